"""`LaSEREncoder`: latent-thinking embeddings from any causal LM."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from laser_rag import _models
from laser_rag.config import CONFIG_NAME, LaSERConfig
from laser_rag.latent import latent_rollout, pool_trajectory

_CHECKPOINTS = Path(__file__).parent / "checkpoints"
#: Checkpoints shipped inside the package, by name: ``LaSEREncoder.from_pretrained("builtin:basic")``.
BUILTIN_CHECKPOINTS = {"laser": _CHECKPOINTS / "laser-smollm2-135m", "basic": _CHECKPOINTS / "basic-smollm2-135m"}
_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
_PROGRESS_THRESHOLD = 256  # texts; larger inputs show a progress bar unless told otherwise


class TruncationWarning(UserWarning):
    """Some inputs were longer than ``max_length`` tokens and were cut. Escalate with ``warnings.simplefilter``."""


def tokenize_prompts(
    tokenizer, prompts: Sequence[str], max_length: int, append_eos: bool, offsets: bool = False
) -> tuple[list[list[int]], int, list[list[tuple[int, int]]] | None]:
    """How every encoder input is tokenised: special tokens added, cut to ``max_length`` with room kept for the EOS
    that ``append_eos`` appends. Returns the ids, how many prompts were cut, and (``offsets=True``, fast tokenizers
    only) each kept token's character span in its prompt, for the training code that locates rationale segments."""
    eos = [tokenizer.eos_token_id] if append_eos else []
    budget = max_length - len(eos)
    encoded = tokenizer(list(prompts), add_special_tokens=True, truncation=True, max_length=budget + 1,
                        return_attention_mask=False, return_offsets_mapping=offsets)
    ids = encoded["input_ids"]
    truncated = sum(len(x) > budget for x in ids)
    spans = [list(x[:budget]) for x in encoded["offset_mapping"]] if offsets else None
    return [list(x[:budget]) + eos for x in ids], truncated, spans


def default_source() -> str:
    """The embedded default: the shipped LaSER adapter on SmolLM2-135M, or the bare backbone before one exists."""
    shipped = BUILTIN_CHECKPOINTS["laser"]
    return str(shipped) if (shipped / CONFIG_NAME).is_file() else _models.DEFAULT_BASE


def _check_texts(texts: Sequence[str], what: str) -> list[str]:
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise TypeError(f"{what}s must be a list of strings, got {type(texts).__name__}")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{what} at index {index} is a {type(text).__name__}, not a str")
        if not text.strip():
            raise ValueError(f"{what} at index {index} is empty")
    return list(texts)


class LaSEREncoder:
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
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.config = config or LaSERConfig()
        self._base_id = base_id
        self._adapter_id = adapter_id
        self._adapter_dir = Path(adapter_dir) if adapter_dir else None
        if getattr(tokenizer, "padding_side", "left") != "left":
            tokenizer.padding_side = "left"
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if self.config.append_eos and tokenizer.eos_token_id is None:
            raise ValueError("append_eos is set but the tokenizer has no EOS token")

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
        embedded default. Keyword arguments override fields of the checkpoint's `LaSERConfig`
        (e.g. ``num_thinking_steps=1`` for the single-pass encoder).
        """
        source = str(source) if source is not None else default_source()
        if source.startswith("builtin:"):
            name = source.removeprefix("builtin:")
            if name not in BUILTIN_CHECKPOINTS or not (BUILTIN_CHECKPOINTS[name] / CONFIG_NAME).is_file():
                raise _models.ModelNotFoundError(f"no built-in checkpoint {name!r}; shipped: {_shipped_names()}")
            source = str(BUILTIN_CHECKPOINTS[name])
        device = torch.device(device) if device is not None else _models.default_device()
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        dtype = dtype or _models.default_dtype(device)
        load = dict(device=device, dtype=dtype, trust_remote_code=trust_remote_code, revision=revision)

        directory = Path(source).expanduser()
        config_file = directory / CONFIG_NAME
        has_config = directory.is_dir() and config_file.is_file()
        config = LaSERConfig.load(directory) if has_config else LaSERConfig()
        config = dataclasses.replace(config, **config_overrides) if config_overrides else config
        has_adapter = directory.is_dir() and (directory / _ADAPTER_FILES[0]).is_file()
        if has_adapter:
            if not config.base_model:
                raise ValueError(f"{config_file} must name the base_model the adapter in {directory} belongs to")
            backbone = _models.load_backbone(config.base_model, **load)
            model = _merge_adapter(backbone.model, directory)
            adapter_id = "lora:sha256:" + _models.file_sha256(directory / _ADAPTER_FILES[1])
            return cls(model, backbone.tokenizer, config, base_id=backbone.base_id, adapter_id=adapter_id,
                       adapter_dir=directory)
        weights = source
        if has_config and config.base_model and not (directory / "config.json").is_file():
            weights = config.base_model  # a config-only checkpoint: settings on top of a referenced backbone
        if not has_config or not config.base_model:
            config = dataclasses.replace(config, base_model=_portable_reference(weights))
        backbone = _models.load_backbone(weights, **load)
        return cls(backbone.model, backbone.tokenizer, config, base_id=backbone.base_id)

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
        """The same weights with other settings (e.g. ``num_thinking_steps=1``); the model is shared, not copied."""
        return LaSEREncoder(
            self.model, self.tokenizer, dataclasses.replace(self.config, **changes),
            base_id=self._base_id, adapter_id=self._adapter_id, adapter_dir=self._adapter_dir,
        )

    # ------------------------------------------------------------------ identity
    @property
    def dimension(self) -> int:
        return int(self.model.get_input_embeddings().weight.shape[1])

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def fingerprint(self) -> str:
        """A stable id of everything that shapes a vector: base weights, adapter, K, templates, pooling, EOS and
        the truncation length.

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
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]

    def __repr__(self) -> str:
        return (f"LaSEREncoder(base={self.config.base_model!r}, K={self.config.num_thinking_steps}, "
                f"dim={self.dimension}, adapter={'yes' if self._adapter_id else 'no'}, device={self.device})")

    # ------------------------------------------------------------------ encoding
    def encode_queries(
        self,
        texts: Sequence[str] | str,
        *,
        rationales: Sequence[str] | None = None,
        num_thinking_steps: int | None = None,
        batch_size: int = 16,
        show_progress_bar: bool | None = None,
    ) -> np.ndarray:
        """Embed queries with the query template: ``[n, dim]`` float32, unit length.

        With ``rationales`` (one per query) this is the explicit view: the query followed by its rationale, read
        in one pass (the teacher view in training, and rewrite-then-retrieve at inference).
        """
        single = isinstance(texts, str)
        texts = _check_texts([texts] if single else texts, "query")
        if rationales is None:
            prompts = [self.config.format_query(t) for t in texts]
            steps = num_thinking_steps or self.config.num_thinking_steps
        else:
            rationales = _check_texts([rationales] if isinstance(rationales, str) else rationales, "rationale")
            if len(rationales) != len(texts):
                raise ValueError(f"got {len(texts)} queries but {len(rationales)} rationales")
            prompts = [self.config.format_explicit(t, r) for t, r in zip(texts, rationales)]
            steps = 1
        vectors = self._encode(prompts, steps, batch_size, show_progress_bar)
        return vectors[0] if single else vectors

    def encode_documents(
        self,
        texts: Sequence[str] | str,
        *,
        num_thinking_steps: int | None = None,
        batch_size: int = 16,
        show_progress_bar: bool | None = None,
    ) -> np.ndarray:
        """Embed documents with the document template (no instruction): ``[n, dim]`` float32, unit length."""
        single = isinstance(texts, str)
        texts = _check_texts([texts] if single else texts, "document")
        prompts = [self.config.format_document(t) for t in texts]
        steps = num_thinking_steps or self.config.num_thinking_steps
        vectors = self._encode(prompts, steps, batch_size, show_progress_bar)
        return vectors[0] if single else vectors

    def tokenize(self, prompts: Sequence[str]) -> tuple[list[list[int]], int]:
        """Token ids of already-templated prompts, cut to ``max_length`` (EOS kept); and how many were cut."""
        ids, truncated, _ = tokenize_prompts(self.tokenizer, prompts, self.config.max_length, self.config.append_eos)
        return ids, truncated

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

    def _encode(self, prompts: list[str], steps: int, batch_size: int, show_progress_bar: bool | None) -> np.ndarray:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        ids, truncated = self.tokenize(prompts)
        if truncated:
            warnings.warn(
                f"{truncated} of {len(ids)} texts were longer than max_length={self.config.max_length} tokens "
                "and were truncated",
                TruncationWarning,
                stacklevel=3,
            )
        out = np.empty((len(ids), self.dimension), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)  # length buckets: little padding
        starts = range(0, len(order), batch_size)
        show = len(ids) >= _PROGRESS_THRESHOLD if show_progress_bar is None else show_progress_bar
        with torch.inference_mode():
            for start in tqdm(starts, desc="encoding", unit="batch", disable=not show):
                rows = order[start:start + batch_size]
                input_ids, mask = self.pad([ids[i] for i in rows])
                states = latent_rollout(self.model, input_ids, mask, steps)
                out[rows] = pool_trajectory(states, self.config.pooling).float().cpu().numpy()
        return out


def _merge_adapter(model: torch.nn.Module, directory: Path) -> torch.nn.Module:
    from peft import PeftModel

    merged = PeftModel.from_pretrained(model, str(directory)).merge_and_unload()
    merged.requires_grad_(False)
    return merged.eval()


def _portable_reference(source: str) -> str:
    """How a saved config should name a backbone: package references and hub ids as given, paths absolute."""
    if source.startswith("pkg:"):
        return source
    path = Path(source).expanduser()
    return str(path.resolve()) if path.exists() else source


def _shipped_names() -> list[str]:
    return [name for name, path in BUILTIN_CHECKPOINTS.items() if (path / CONFIG_NAME).is_file()]
