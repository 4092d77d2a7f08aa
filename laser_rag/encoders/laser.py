"""`LaSEREncoder`: latent-thinking embeddings from any causal LM."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import warnings
import weakref
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from laser_rag import _builtin, _models, backbones, runtime
from laser_rag.config import CONFIG_NAME, LaSERConfig, released_preset
from laser_rag.encoders import register_encoder
from laser_rag.encoders.base import BaseEncoder
from laser_rag.errors import TruncationWarning
from laser_rag.latent import latent_rollout, latent_rollout_with_thoughts, pool_trajectory
from laser_rag.prompts import PromptFormat
from laser_rag.thoughts import Thoughts

logger = logging.getLogger(__name__)

#: Checkpoints shipped inside the package, by name: ``LaSEREncoder.from_pretrained("builtin:basic")``.
BUILTIN_CHECKPOINTS = {name: _builtin.SHIPPED[name] for name in ("laser", "basic")}
_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
_PROGRESS_THRESHOLD = 256  # texts; larger inputs show a progress bar unless told otherwise
#: ``0`` turns the CUDA-graph rollout off (the reference rollout runs instead); it is on by default on CUDA.
CUDA_GRAPHS_ENV = "LASER_RAG_CUDA_GRAPHS"
_static_rollouts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> StaticRollout (views share)


def default_source() -> str:
    """The embedded default: the shipped LaSER adapter on SmolLM2-135M, or the bare backbone before one exists."""
    shipped = BUILTIN_CHECKPOINTS["laser"]
    return str(shipped) if (shipped / CONFIG_NAME).is_file() else backbones.DEFAULT_BASE


def resolve_builtin(source: str) -> str:
    """``builtin:laser`` / ``builtin:basic`` -> the shipped checkpoint's directory; anything else unchanged
    (`laser_rag._builtin.resolve_builtin`; `ModelNotFoundError` for one that is not shipped)."""
    return _builtin.resolve_builtin(source, names=BUILTIN_CHECKPOINTS, marker=CONFIG_NAME)


class LaSEREncoder(BaseEncoder):
    """Embeds queries and documents by thinking K latent steps on a causal LM, then pooling the trajectory.

    Load with `from_pretrained`; the constructor wraps an already-loaded model (used by training).

    Example::

        encoder = LaSEREncoder.from_pretrained()          # the embedded default, offline
        q = encoder.encode_queries(["why is the sky blue?"])
        d = encoder.encode_documents(["Rayleigh scattering favours short wavelengths."])
        scores = q @ d.T                                  # cosine similarity: vectors are unit length
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        config: LaSERConfig | None = None,
        *,
        base_id: str,
        adapter_id: str | None = None,
        adapter_dir: str | Path | None = None,
        dtype_reason: str | None = None,
    ) -> None:
        self.model = model
        self._tokenizer = tokenizer
        self.config = config or LaSERConfig()
        self._base_id = base_id
        self._adapter_id = adapter_id
        self._adapter_dir = Path(adapter_dir) if adapter_dir else None
        self._dtype_reason = dtype_reason
        if getattr(tokenizer, "padding_side", "left") != "left":
            tokenizer.padding_side = "left"
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self._format = PromptFormat(self.config, tokenizer)

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_pretrained(
        cls,
        source: str | Path | None = None,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        **config_overrides,
    ) -> LaSEREncoder:
        """Load an encoder.

        ``source`` is a Hugging Face hub id (``Alibaba-NLP/LaSER-Qwen3-0.6B``), a local model directory, a ``.gguf``
        file (dequantised once and cached), a LaSER checkpoint directory (``laser_config.json`` + a peft adapter),
        ``builtin:laser`` / ``builtin:basic`` (the checkpoints shipped with the package), or ``None`` for the
        embedded default. A released LaSER checkpoint (or a local copy whose path shows its name) without a
        ``laser_config.json`` reads text in the format it was trained with (`laser_rag.config.RELEASED_PRESET`).
        Keyword arguments override fields of the `LaSERConfig` (e.g. ``num_thinking_steps=1``).

        ``dtype``: a torch dtype or one of "float32"/"fp32", "bfloat16"/"bf16", "float16"/"fp16", "auto"; default
        ``$LASER_RAG_DTYPE``, else bf16 on CUDA and on CPUs with AMX or AVX512-BF16, fp32 on other CPUs.
        """
        source = resolve_builtin(str(source) if source is not None else default_source())
        device = torch.device(device) if device is not None else runtime.default_device()
        dtype, dtype_reason = runtime.dtype_choice(device, dtype)
        load = dict(device=device, dtype=dtype, trust_remote_code=trust_remote_code, revision=revision)

        directory = Path(source).expanduser()
        config_file = directory / CONFIG_NAME
        has_config = directory.is_dir() and config_file.is_file()
        config = LaSERConfig.load(directory) if has_config else _default_config(source)
        config = dataclasses.replace(config, **config_overrides) if config_overrides else config
        built = dict(dtype_reason=dtype_reason)
        has_adapter = directory.is_dir() and (directory / _ADAPTER_FILES[0]).is_file()
        if has_adapter:
            if not config.base_model:
                raise ValueError(f"{config_file} must name the base_model the adapter in {directory} belongs to")
            backbone = backbones.load_backbone(config.base_model, **load)
            model = backbones.merge_adapter(backbone.model, directory)
            adapter_id = "lora:sha256:" + _models.file_sha256(directory / _ADAPTER_FILES[1])
            return cls(model, backbone.tokenizer, config, base_id=backbone.base_id, adapter_id=adapter_id,
                       adapter_dir=directory, **built)
        weights = source
        if has_config and config.base_model and not (directory / "config.json").is_file():
            weights = config.base_model  # a config-only checkpoint: settings on top of a referenced backbone
        if not has_config or not config.base_model:
            config = dataclasses.replace(config, base_model=_portable_reference(weights))
        backbone = backbones.load_backbone(weights, **load)
        return cls(backbone.model, backbone.tokenizer, config, base_id=backbone.base_id, **built)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write this encoder's config (and its adapter, if it has one) so `from_pretrained` reloads it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self._adapter_dir is not None and self._adapter_dir.resolve() != directory.resolve():
            for name in _ADAPTER_FILES:
                shutil.copyfile(self._adapter_dir / name, directory / name)
        self.config.save(directory)
        return directory

    def with_config(self, **changes) -> LaSEREncoder:
        """The same weights with other settings (e.g. ``num_thinking_steps=1``); the model is shared, not copied.
        Settings that change nothing give this encoder itself."""
        config = dataclasses.replace(self.config, **changes)
        if config == self.config:
            return self
        view = LaSEREncoder(
            self.model, self._tokenizer, config,
            base_id=self._base_id, adapter_id=self._adapter_id, adapter_dir=self._adapter_dir,
            dtype_reason=self._dtype_reason,
        )
        view.source = self.source
        return view

    # ------------------------------------------------------------------ identity
    @property
    def base_id(self) -> str:
        """A stable id of the backbone's weights (hub id and revision, or a content hash)."""
        return self._base_id

    @property
    def adapter_id(self) -> str | None:
        """A content hash of the merged LoRA adapter, or None."""
        return self._adapter_id

    @property
    def num_thinking_steps(self) -> int:
        return self.config.num_thinking_steps

    supports_thinking_steps = True

    def with_thinking_steps(self, num_thinking_steps: int) -> LaSEREncoder:
        """The same weights thinking ``num_thinking_steps`` latent steps (`with_config`)."""
        return self.with_config(num_thinking_steps=num_thinking_steps)

    @property
    def tokenizer(self):
        return self._tokenizer

    @property
    def dimension(self) -> int:
        return int(self.model.get_input_embeddings().weight.shape[1])

    @property
    def max_length(self) -> int:
        return self.config.max_length

    @property
    def label(self) -> str:
        if self.config.name:
            return self.config.name
        steps = self.config.num_thinking_steps
        return "basic" if steps == 1 else f"laser-k{steps}"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def precision(self) -> str:
        return runtime.dtype_name(self.dtype)

    @property
    def fingerprint(self) -> str:
        """A stable id of everything that shapes a vector: base weights, adapter, K, pooling, the input format
        (templates, chat wrapper, EOS) and the token budgets. Not the dtype (see `precision`).

        Vectors from encoders with different fingerprints must never share a collection.
        """
        c = self.config
        identity = {
            "base": self._base_id,
            "adapter": self._adapter_id,
            "num_thinking_steps": c.num_thinking_steps,
            "pooling": c.pooling,
            "query_template": c.format_query("{text}"),
            "document_template": c.document_template,
            "append_eos": c.append_eos,
            "max_length": c.max_length,
        }
        if c.chat_template or c.assistant_suffix or c.query_budget != c.max_length:
            # only formats that did not exist before add keys, so older collections keep their fingerprint
            identity["input_format"] = {"wrapper": list(self._format.wrapper), "query_max_length": c.query_budget}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]

    def __repr__(self) -> str:
        dtype = self.precision + (f" ({self._dtype_reason})" if self._dtype_reason else "")
        return (f"LaSEREncoder(base={self.config.base_model!r}, K={self.config.num_thinking_steps}, "
                f"dim={self.dimension}, adapter={'yes' if self._adapter_id else 'no'}, device={self.device}, "
                f"dtype={dtype})")

    # ------------------------------------------------------------------ the input format
    def render(self, text: str, kind: str = "document", *, instruction: str | None = None,
               rationale: str | None = None) -> str:
        """The exact string the model reads for ``text`` as a "query", "document" or "explicit" input (``text`` is
        the query then, followed by its ``rationale``), before tokenisation and truncation (rendered by
        `laser_rag.prompts.PromptFormat`, as training renders its inputs)."""
        return self._format.render(text, kind, instruction=instruction, rationale=rationale).prompt

    def tokenize(self, texts: Sequence[str], kind: str = "document", *, instruction: str | None = None,
                 rationales: Sequence[str] | None = None) -> tuple[list[list[int]], int]:
        """Token ids of ``texts`` rendered as ``kind`` inputs, each cut to its budget (``query_max_length`` for
        queries, ``max_length`` otherwise) by cutting the text, never the template; and how many were cut."""
        if kind == "explicit":
            if rationales is None or len(rationales) != len(texts):
                raise ValueError("explicit inputs need one rationale per query")
            rendered = [self._format.render(t, kind, instruction=instruction, rationale=r)
                        for t, r in zip(texts, rationales)]
        else:
            rendered = [self._format.render(t, kind, instruction=instruction) for t in texts]
        budget = self.config.query_budget if kind == "query" else self.config.max_length
        tokens = self._format.tokenize(rendered, budget)
        return [t.ids for t in tokens], sum(t.cut for t in tokens)

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` occupies as a document: template, chat wrapper and EOS included, before truncation."""
        (tokens,) = self._format.tokenize([self._format.render(text, "document")], None)
        return len(tokens.ids)

    def pad(self, ids: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-pad token id lists into ``(input_ids, attention_mask)`` on the encoder's device."""
        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, x in enumerate(ids):
            if x:
                input_ids[row, width - len(x):] = torch.tensor(x, dtype=torch.long)
                mask[row, width - len(x):] = 1
        return input_ids.to(self.device), mask.to(self.device)

    # ------------------------------------------------------------------ encoding
    def encode_queries(
        self,
        texts: Sequence[str] | str,
        *,
        instruction: str | None = None,
        num_thinking_steps: int | None = None,
        batch_size: int = 16,
        show_progress_bar: bool | None = None,
    ) -> np.ndarray:
        """Embed queries with the query template (and ``instruction``, default the config's): ``[n, dim]`` float32,
        unit length. ``num_thinking_steps`` overrides K for this call."""
        return BaseEncoder.encode_queries(self._with_steps(num_thinking_steps), texts, instruction=instruction,
                                          batch_size=batch_size, show_progress_bar=show_progress_bar)

    def encode_documents(
        self,
        texts: Sequence[str] | str,
        *,
        num_thinking_steps: int | None = None,
        batch_size: int = 16,
        show_progress_bar: bool | None = None,
    ) -> np.ndarray:
        """Embed documents with the document template (no instruction): ``[n, dim]`` float32, unit length."""
        return BaseEncoder.encode_documents(self._with_steps(num_thinking_steps), texts, batch_size=batch_size,
                                            show_progress_bar=show_progress_bar)

    def _with_steps(self, num_thinking_steps: int | None) -> LaSEREncoder:
        return self if num_thinking_steps is None else self.with_config(num_thinking_steps=num_thinking_steps)

    def _encode_queries(self, texts, *, instruction, batch_size, show_progress_bar) -> np.ndarray:
        ids, cut = self.tokenize(texts, "query", instruction=instruction)
        return self._embed(ids, cut, self.config.query_budget, self.config.num_thinking_steps, batch_size,
                           show_progress_bar)[0]

    def _encode_documents(self, texts, *, batch_size, show_progress_bar) -> np.ndarray:
        ids, cut = self.tokenize(texts, "document")
        return self._embed(ids, cut, self.config.max_length, self.config.num_thinking_steps, batch_size,
                           show_progress_bar)[0]

    def _encode_explicit(self, queries, rationales, *, batch_size) -> np.ndarray:
        ids, cut = self.tokenize(queries, "explicit", rationales=rationales)
        return self._embed(ids, cut, self.config.max_length, 1, batch_size, None)[0]  # one pass: the text is explicit

    def _thoughts(self, texts, kind, *, top_k, instruction, batch_size) -> list[Thoughts]:
        ids, cut = self.tokenize(texts, kind, instruction=instruction)
        budget = self.config.query_budget if kind == "query" else self.config.max_length
        vectors, probs, tokens = self._embed(ids, cut, budget, self.config.num_thinking_steps, batch_size, None,
                                             top_k=top_k)
        pieces = self._tokenizer.batch_decode(tokens.reshape(-1, 1).tolist())
        words = np.array(pieces, dtype=object).reshape(tokens.shape)
        return [Thoughts(text=text, kind=kind, vector=vectors[row],
                         steps=[list(zip(words[row, step].tolist(), probs[row, step].tolist()))
                                for step in range(probs.shape[1])])
                for row, text in enumerate(texts)]

    def _embed(self, ids: list[list[int]], cut: int, budget: int, steps: int, batch_size: int,
               show_progress_bar: bool | None, *, top_k: int = 0) -> tuple[np.ndarray, np.ndarray | None,
                                                                          np.ndarray | None]:
        """(vectors ``[n, dim]``; with ``top_k``, also each step's top probabilities and token ids, ``[n, K, top_k]``,
        recorded by the rollout that made the vectors)."""
        if cut:
            warnings.warn(f"{cut} of {len(ids)} texts were longer than max_length={budget} tokens and were truncated",
                          TruncationWarning, stacklevel=5)
        out = np.empty((len(ids), self.dimension), dtype=np.float32)
        width = min(top_k, self.model.get_output_embeddings().weight.shape[0])  # a vocabulary smaller than top_k
        probs = np.empty((len(ids), steps, width), dtype=np.float32) if top_k else None
        tokens = np.empty((len(ids), steps, width), dtype=np.int64) if top_k else None
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)  # length buckets: little padding
        starts = range(0, len(order), batch_size)
        show = len(ids) >= _PROGRESS_THRESHOLD if show_progress_bar is None else show_progress_bar
        with torch.inference_mode():
            for start in tqdm(starts, desc="encoding", unit="batch", disable=not show):
                rows = order[start:start + batch_size]
                input_ids, mask = self.pad([ids[i] for i in rows])
                states, top_probs, top_ids = self._rollout(input_ids, mask, steps, top_k)
                out[rows] = pool_trajectory(states, self.config.pooling).cpu().numpy()
                if top_k:
                    probs[rows] = top_probs.cpu().numpy()
                    tokens[rows] = top_ids.cpu().numpy()
        return out, probs, tokens

    def _rollout(self, input_ids: torch.Tensor, mask: torch.Tensor, steps: int,
                 top_k: int = 0) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(states, and with ``top_k`` each step's top probabilities and token ids). On CUDA, the static-cache
        rollout whose soft-token steps replay as CUDA graphs (`StaticRollout`, shared by every view of these
        weights); elsewhere, and with ``$LASER_RAG_CUDA_GRAPHS=0``, the reference rollout."""
        if steps == 1 or input_ids.device.type != "cuda" or os.environ.get(CUDA_GRAPHS_ENV, "1") == "0":
            if top_k:
                return latent_rollout_with_thoughts(self.model, input_ids, mask, steps, top_k)
            return latent_rollout(self.model, input_ids, mask, steps), None, None
        rollout = _static_rollouts.get(self.model)
        if rollout is None:
            from laser_rag.static_rollout import StaticRollout

            rollout = _static_rollouts[self.model] = StaticRollout(self.model)
        if top_k:
            return rollout.with_thoughts(input_ids, mask, steps, top_k)
        return rollout(input_ids, mask, steps), None, None


def _default_config(source: str) -> LaSERConfig:
    """The config of a source without ``laser_config.json``: the released format for the released family, else the
    defaults."""
    preset = released_preset(source)
    if preset is None:
        return LaSERConfig()
    logger.info("%s is a released LaSER checkpoint: using its training input format (preset 'released': chat "
                "template, '<think>' suffix, 'Instruct: ...\\nQuery: ...' queries, K=3); override any field with "
                "from_pretrained(..., field=value)", source)
    return LaSERConfig(**preset)


def _portable_reference(source: str) -> str:
    """How a saved config should name a backbone: package references and hub ids as given, paths absolute."""
    if source.startswith("pkg:"):
        return source
    path = Path(source).expanduser()
    return str(path.resolve()) if path.exists() else source


register_encoder(lambda source: True, LaSEREncoder.from_pretrained, fallback=True)  # any causal LM: asked last
