"""LaSER rollout latency on a GPU: the reference (eager, dynamic cache) rollout against the static-cache rollout
whose soft-token steps replay as CUDA graphs (`laser_rag.static_rollout.StaticRollout`).

Qwen3-0.6B/4B/8B shapes built from their configs with random weights (no download; latency does not depend on the
weights), bf16, sdpa, batch 8, 64 and 256 tokens, K = 1/3/5, plus documents/s at 512 tokens (K=3). Every cell
interleaves the two paths round by round in one process. Needs only torch and transformers (it imports two
laser_rag modules from this checkout), so it runs on a bare GPU image:

    python benchmarks/gpu_latency.py --out benchmarks/results/gpu_latency.json
    python benchmarks/gpu_latency.py --smoke          # a tiny config on the CPU: checks the script, not speed
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from laser_rag.latent import latent_rollout  # noqa: E402
from laser_rag.static_rollout import StaticRollout  # noqa: E402

#: The released LaSER backbones' shapes (Qwen3 configs as published).
SHAPES = {
    "qwen3-0.6b": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                       num_key_value_heads=8, head_dim=128, tie_word_embeddings=True),
    "qwen3-4b": dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
                     num_key_value_heads=8, head_dim=128, tie_word_embeddings=True),
    "qwen3-8b": dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
                     num_key_value_heads=8, head_dim=128, tie_word_embeddings=False),
    "smoke": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16, tie_word_embeddings=True, vocab_size=1000),
}


def build(shape: str, device: torch.device, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, Qwen3Config

    fields = {"vocab_size": 151936, "max_position_embeddings": 4096, **SHAPES[shape]}
    config = Qwen3Config(attn_implementation="sdpa", **fields)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval().requires_grad_(False)


def batch(size: int, length: int, vocab: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded, mixed lengths (between half and all of ``length``), as real batches are."""
    generator = torch.Generator().manual_seed(length)
    lengths = torch.randint(length // 2, length + 1, (size,), generator=generator)
    lengths[0] = length
    ids = torch.zeros(size, length, dtype=torch.long)
    mask = torch.zeros(size, length, dtype=torch.long)
    for row, n in enumerate(lengths.tolist()):
        ids[row, length - n:] = torch.randint(1, vocab, (n,), generator=generator)
        mask[row, length - n:] = 1
    return ids.to(device), mask.to(device)


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) * 1000.0


def measure(model, ids, mask, steps: int, rounds: int, device) -> dict[str, float]:
    static = StaticRollout(model)
    paths = {
        "eager": lambda: latent_rollout(model, ids, mask, steps),
        "graphed": lambda: static(ids, mask, steps),
    }
    with torch.inference_mode():
        for fn in paths.values():  # warm-up: kernels, graph capture
            fn(), fn()
        times = {name: [] for name in paths}
        for _ in range(rounds):
            for name, fn in paths.items():
                times[name].append(timed(fn, device))
        difference = (paths["eager"]() - paths["graphed"]()).abs().max().item()
    return {**{f"{name}_ms": statistics.median(values) for name, values in times.items()},
            "max_abs_difference": difference}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="qwen3-0.6b,qwen3-4b,qwen3-8b")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lengths", default="64,256")
    parser.add_argument("--steps", default="1,3,5")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="tiny config on the CPU (fp32), 2 rounds")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.smoke:
        args.shapes, args.rounds = "smoke", 2
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    report = {
        "benchmark": "gpu_latency", "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "dtype": str(dtype).removeprefix("torch."), "attention": "sdpa", "batch": args.batch,
        "torch": torch.__version__, "python": platform.python_version(), "rounds": args.rounds, "cells": [],
    }
    for shape in args.shapes.split(","):
        model = build(shape, device, dtype)
        vocab = model.config.vocab_size
        for length in map(int, args.lengths.split(",")):
            ids, mask = batch(args.batch, length, vocab, device)
            base = None
            for steps in map(int, args.steps.split(",")):
                cell = {"shape": shape, "tokens": length, "K": steps,
                        **measure(model, ids, mask, steps, args.rounds, device)}
                base = cell if steps == 1 else base
                if base is not None:
                    cell["eager_vs_k1"] = cell["eager_ms"] / base["eager_ms"]
                    cell["graphed_vs_k1"] = cell["graphed_ms"] / base["graphed_ms"]
                report["cells"].append(cell)
                print(json.dumps(cell), flush=True)
        ids, mask = batch(args.batch, 512 if not args.smoke else 64, vocab, device)
        docs = measure(model, ids, mask, 3, max(3, args.rounds // 4), device)
        report["cells"].append({"shape": shape, "tokens": int(ids.shape[1]), "K": 3, "documents": True,
                                **docs, "eager_docs_per_s": args.batch / docs["eager_ms"] * 1000.0,
                                "graphed_docs_per_s": args.batch / docs["graphed_ms"] * 1000.0})
        print(json.dumps(report["cells"][-1]), flush=True)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
