"""The LatentRAG model: an LLM with latent thought/subquery tokens, three projectors and a trainable retriever.

- the LLM (a transformers causal LM; LoRA while training, merged for inference) reads the question, the latent
  blocks and the retrieved documents as text;
- ``special``: the input embeddings of the m thought tokens, the n subquery tokens and the two action tokens
  (trained; the action rows double as the LM head's rows for the actions);
- ``proj_ret`` maps the subquery tokens' last hidden states into the retriever's *input* space; the retriever (a
  sentence-transformers BERT, LoRA while training) reads ``[CLS] <projected tokens> [SEP]`` and mean-pools, as it
  pools text;
- ``proj_thought`` / ``proj_query`` map latent blocks into the LLM's input space for latent decoding.

A checkpoint folder holds ``latentrag_config.json``, ``llm_adapter/`` and ``retriever_adapter/`` (peft LoRA
adapters) and ``latentrag_modules.safetensors`` (the special embeddings and the projectors).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor, nn

from laser_rag import _models, backbones, runtime
from laser_rag.errors import ModelNotFoundError
from laser_rag.latent import next_token_logits
from laser_rag.latentrag import functional as LF
from laser_rag.latentrag.config import ANSWER, QUERY, LatentRAGConfig

logger = logging.getLogger(__name__)

MODULES_FILE = "latentrag_modules.safetensors"
LLM_ADAPTER = "llm_adapter"
RETRIEVER_ADAPTER = "retriever_adapter"
#: LoRA on the retriever's attention and dense layers (BERT names).
RETRIEVER_LORA_TARGETS = ["query", "key", "value", "dense"]


class Projector(nn.Module):
    """One bidirectional (unmasked) self-attention layer and one position-wise FFN, pre-LN with residuals, then a
    LayerNorm and a linear map to ``d_out``: ``[B, T, d_in] -> [B, T, d_out]``."""

    def __init__(self, d_in: int, d_out: int, *, heads: int = 8, ffn_factor: int = 2) -> None:
        super().__init__()
        if d_in % heads:
            raise ValueError(f"the projector's width {d_in} is not divisible by {heads} heads")
        self.attn_norm = nn.LayerNorm(d_in)
        self.attn = nn.MultiheadAttention(d_in, heads, batch_first=True)
        self.ffn_norm = nn.LayerNorm(d_in)
        self.ffn = nn.Sequential(nn.Linear(d_in, ffn_factor * d_in), nn.GELU(), nn.Linear(ffn_factor * d_in, d_in))
        self.out = nn.Sequential(nn.LayerNorm(d_in), nn.Linear(d_in, d_out))

    def forward(self, x: Tensor) -> Tensor:
        h = self.attn_norm(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        x = x + self.ffn(self.ffn_norm(x))
        return self.out(x)


def _retriever_path(name: str) -> Path:
    from laser_rag.encoders.sentence_transformer import MINILM_ALIASES, ST_PREFIX, minilm_path

    name = name.removeprefix(ST_PREFIX)
    if name.lower() in MINILM_ALIASES:
        return minilm_path()
    path = Path(name).expanduser()
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(f"the LatentRAG retriever {name!r} is not a local sentence-transformers folder "
                                 "with its transformer at the top (config.json); use 'all-minilm-l6-v2'")
    return path


class LatentRAGModel(nn.Module):
    """The trainable parts and the LLM. Build a fresh one with `from_base` (training) or load a checkpoint with
    `from_pretrained` (inference: adapters merged, no gradients)."""

    def __init__(self, config: LatentRAGConfig, llm, tokenizer, retriever, retriever_tokenizer,
                 base_id: str = "") -> None:
        super().__init__()
        self.config = config
        self.llm = llm
        self.tokenizer = tokenizer
        self.retriever = retriever
        self.retriever_tokenizer = retriever_tokenizer
        self.base_id = base_id
        hidden = llm.get_input_embeddings().weight.shape[1]
        d_ret = retriever.get_input_embeddings().weight.shape[1]
        shape = {"heads": config.projector_heads, "ffn_factor": config.projector_ffn_factor}
        self.special = nn.Parameter(self._initial_special(hidden))
        self.proj_ret = Projector(hidden, d_ret, **shape)
        self.proj_thought = Projector(hidden, hidden, **shape)
        self.proj_query = Projector(hidden, hidden, **shape)

    # ------------------------------------------------------------------ construction
    def _initial_special(self, hidden: int) -> Tensor:
        """Thought tokens start at the embedding of " think", subquery tokens at " search", actions at " search" /
        " answer", each with a small distinct perturbation (fixed seed), so no two latent tokens start equal."""
        weight = self.llm.get_input_embeddings().weight.detach().float()
        words = ([" think"] * self.config.num_thought_tokens + [" search"] * self.config.num_query_tokens
                 + [" search", " answer"])
        rows = torch.stack([weight[self.tokenizer(w, add_special_tokens=False)["input_ids"]].mean(0) for w in words])
        noise = torch.randn(rows.shape, generator=torch.Generator().manual_seed(0)) * weight.std() * 0.1
        return (rows + noise).to(weight.dtype)

    @classmethod
    def from_base(cls, config: LatentRAGConfig | None = None, *, device: str | torch.device = "cpu",
                  dtype: torch.dtype = torch.float32) -> LatentRAGModel:
        """An untrained model on the pretrained LLM and retriever (no adapters yet: training adds them)."""
        config = config or LatentRAGConfig()
        device = torch.device(device)
        backbone = backbones.load_backbone(config.base_model or backbones.DEFAULT_BASE, device=device, dtype=dtype)
        retriever, retriever_tokenizer = _load_retriever(config.retriever, device, dtype)
        model = cls(config, backbone.model, backbone.tokenizer, retriever, retriever_tokenizer, backbone.base_id)
        return model.to(device=device, dtype=dtype)

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str | torch.device | None = None,
                        dtype: str | torch.dtype | None = None) -> LatentRAGModel:
        """A trained checkpoint folder, ready for inference (LoRA merged, eval mode, no gradients). The dtype follows
        `laser_rag.runtime.dtype_choice` for the device unless given."""
        from safetensors.torch import load_file

        directory = Path(directory)
        if not (directory / "latentrag_config.json").is_file():
            raise ModelNotFoundError(f"{directory} is not a LatentRAG checkpoint (no latentrag_config.json)")
        config = LatentRAGConfig.load(directory)
        place = torch.device(device) if device is not None else runtime.default_device()
        chosen, _ = runtime.dtype_choice(place, dtype)
        model = cls.from_base(config, device=place, dtype=torch.float32)
        model.llm = backbones.merge_adapter(model.llm, directory / LLM_ADAPTER)
        model.retriever = backbones.merge_adapter(model.retriever, directory / RETRIEVER_ADAPTER)
        state = load_file(str(directory / MODULES_FILE))
        missing, unexpected = model.load_state_dict(state, strict=False)
        own = [k for k in missing if not k.startswith(("llm.", "retriever."))]
        if own or unexpected:
            raise ValueError(f"{directory / MODULES_FILE} does not fit this config: missing {own}, "
                             f"unexpected {unexpected}")
        model.base_id = f"{model.base_id}+latentrag:{_models.directory_id(directory)}"
        model.to(device=place, dtype=chosen).eval()
        model.requires_grad_(False)
        return model

    def save_pretrained(self, directory: str | Path, *, dtype: torch.dtype = torch.bfloat16) -> Path:
        """Write the config, both LoRA adapters and the small modules (in ``dtype``: bf16 halves the folder)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for part, name in ((self.llm, LLM_ADAPTER), (self.retriever, RETRIEVER_ADAPTER)):
            if not hasattr(part, "save_pretrained") or not hasattr(part, "peft_config"):
                raise ValueError("save_pretrained needs the LoRA-wrapped model of training (adapters not merged)")
            part.save_pretrained(directory / name)
            cast_safetensors(directory / name / "adapter_model.safetensors", dtype)
        modules = {k: v.detach().to("cpu", dtype).contiguous() for k, v in self.state_dict().items()
                   if not k.startswith(("llm.", "retriever."))}
        tmp = directory / f".{MODULES_FILE}.tmp"
        save_file(modules, str(tmp))
        tmp.replace(directory / MODULES_FILE)
        self.config.save(directory)
        return directory

    # ------------------------------------------------------------------ pieces
    @property
    def vocab_size(self) -> int:
        return self.llm.get_input_embeddings().weight.shape[0]

    @property
    def device(self) -> torch.device:
        return self.special.device

    def special_id(self, index: int) -> int:
        """The sequence id of special row ``index`` (ids ``>= vocab_size`` are special)."""
        return self.vocab_size + index

    def thought_ids(self) -> list[int]:
        return [self.special_id(i) for i in range(self.config.num_thought_tokens)]

    def query_ids(self) -> list[int]:
        start = self.config.num_thought_tokens
        return [self.special_id(start + j) for j in range(self.config.num_query_tokens)]

    def action_id(self, action: int) -> int:
        return self.special_id(self.config.num_thought_tokens + self.config.num_query_tokens + action)

    def embed(self, ids: Tensor) -> Tensor:
        embeddings = self.llm.get_input_embeddings()
        return LF.embed_tokens(ids, embeddings.weight, self.special, getattr(embeddings, "embed_scale", 1.0))

    def decoder(self):
        return self.llm.get_decoder()

    def run(self, embeds: Tensor, cache=None, *, attention_mask: Tensor | None = None,
            position_ids: Tensor | None = None):
        """One forward pass of the LLM's decoder on input embeddings (with a KV cache): ``(last states, cache)``."""
        return decoder_pass(self.decoder(), embeds, cache, attention_mask=attention_mask, position_ids=position_ids)

    def lm_logits(self, hidden: Tensor) -> Tensor:
        return next_token_logits(self.llm, hidden)

    def action_logits(self, hidden: Tensor) -> Tensor:
        """``[..., H] -> [..., 2]``: logits of (`<query>`, `<answer>`) (eq. 3)."""
        first = self.config.num_thought_tokens + self.config.num_query_tokens
        return LF.action_logits(hidden, self.special[first + QUERY:first + ANSWER + 1])

    def latent_query_vectors(self, query_states: Tensor) -> Tensor:
        """``[B, n, H]`` subquery states -> ``[B, D]`` unit vectors in the retriever's space (eq. 5)."""
        projected = self.proj_ret(query_states.to(self.special.dtype))
        words = self.retriever.get_input_embeddings().weight
        cls_id, sep_id = self.retriever_tokenizer.cls_token_id, self.retriever_tokenizer.sep_token_id
        batch = projected.shape[0]
        inputs = torch.cat([words[cls_id].expand(batch, 1, -1), projected.to(words.dtype),
                            words[sep_id].expand(batch, 1, -1)], dim=1)
        mask = torch.ones(inputs.shape[:2], dtype=torch.long, device=inputs.device)
        states = self.retriever(inputs_embeds=inputs, attention_mask=mask).last_hidden_state
        return LF.mean_pool(states, mask)


def decoder_pass(decoder, embeds: Tensor, cache=None, *, attention_mask: Tensor | None = None,
                 position_ids: Tensor | None = None):
    """One pass of a causal LM's decoder on input embeddings with a KV cache: ``(last states, cache)``. Without
    ``position_ids`` the positions continue from the cache's length (no padding)."""
    if position_ids is None:
        start = cache.get_seq_length() if cache is not None else 0
        position_ids = torch.arange(start, start + embeds.shape[1], device=embeds.device)[None].expand(
            embeds.shape[0], -1)
    out = decoder(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids,
                  past_key_values=cache, use_cache=True)
    return out.last_hidden_state, out.past_key_values


def _load_retriever(name: str, device: torch.device, dtype: torch.dtype):
    from transformers import AutoModel, AutoTokenizer

    path = _retriever_path(name)
    # dropout off: the paper removes it in the retriever
    model = AutoModel.from_pretrained(str(path), dtype=dtype, hidden_dropout_prob=0.0,
                                      attention_probs_dropout_prob=0.0)
    model.to(device).eval()
    model.requires_grad_(False)
    return model, AutoTokenizer.from_pretrained(str(path))


def cast_safetensors(path: Path, dtype: torch.dtype) -> None:
    """Rewrite a safetensors file (a saved adapter) with every tensor in ``dtype``."""
    from safetensors.torch import load_file, save_file

    tensors = {k: v.to(dtype).contiguous() for k, v in load_file(str(path)).items()}
    save_file(tensors, str(path))
