"""Small models for the app's engine tests: the engine's plumbing without loading the real ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from laser_rag.encoders import BaseEncoder
from laser_rag.errors import GenerationTimeout
from word_vectors import word_vectors


class HashingEncoder(BaseEncoder):
    """Bag of hashed words, unit length: a `BaseEncoder` with no model (no claim about relevance). Reads any
    document whole (no chunking)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.fingerprint_value = f"hashing-{name}"
        self.queries: list[str] = []

    dimension = 64
    max_length = 10**6
    tokenizer = None

    @property
    def fingerprint(self) -> str:
        return self.fingerprint_value

    @property
    def label(self) -> str:
        return self.name

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _vectors(self, texts: list[str]) -> np.ndarray:
        return word_vectors(texts, self.dimension)

    def _encode_queries(self, texts, *, instruction, batch_size, show_progress_bar):
        self.queries += texts
        return self._vectors(texts)

    def _encode_documents(self, texts, *, batch_size, show_progress_bar):
        return self._vectors(texts)

    def _encode_explicit(self, queries, rationales, *, batch_size):
        return self._vectors([f"{q}\n{r}" for q, r in zip(queries, rationales)])


class RewriteTimesOut:
    """An LLM stand-in that answers, but times out on the rewrite prompt."""

    name = "stand-in"

    def generate(self, messages, *, max_new_tokens=None):
        if "[Begin of Question]" in messages[-1]["content"]:
            raise GenerationTimeout("stand-in hit its time limit of 1 s after 3 tokens", partial="abc")
        return "an answer"


@pytest.fixture(scope="session")
def tiny_laser_dir(encoder, tmp_path_factory):
    """A LaSER checkpoint directory on a randomly initialised 1-layer Llama with SmolLM2's tokenizer (K=3 by
    default): a real `LaSEREncoder` that encodes a corpus in seconds."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-laser")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(encoder.tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    encoder.tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_laser(tiny_laser_dir):
    from laser_rag.encoders import LaSEREncoder

    return LaSEREncoder.from_pretrained(tiny_laser_dir, dtype=torch.float32)


@pytest.fixture
def make_engine():
    """``make_engine(data_dir, laser=None, latentrag=None, checkpoint=None, llm=None, **settings)``: an `Engine` on
    the stand-ins (a hashing encoder for every collection unless ``laser`` / ``latentrag`` is given for that mode's,
    and an LLM that times out on rewrites unless ``llm`` is given; ``settings``: more `AppSettings` fields). The
    latentrag agent's checkpoint is ``checkpoint``, else a folder that does not exist (so the tests never load the
    shipped one)."""
    from laser_rag.modes import ModeSources
    from laser_rag_app.engine import Engine
    from laser_rag_app.settings import AppSettings

    def make(data_dir, laser=None, latentrag=None, checkpoint=None, llm=None, **settings) -> Engine:
        encoders = {"basic": HashingEncoder("basic"), "laser": laser or HashingEncoder("laser-k3"),
                    "latentrag": latentrag or HashingEncoder("latentrag")}
        checkpoint = checkpoint or data_dir.parent / "no-latentrag-checkpoint"
        settings = AppSettings(data_dir=data_dir, models=ModeSources(agents={"latentrag": str(checkpoint)}),
                               **settings)
        return Engine(settings, encoders=encoders, llm=llm or RewriteTimesOut())

    return make


@pytest.fixture(scope="session")
def latentrag_checkpoint(tmp_path_factory):
    """An untrained LatentRAG checkpoint (SmolLM2-135M + all-MiniLM-L6-v2, LoRA at init, random projectors) with
    small limits for speed: answers of at most 4 tokens, 4 decoded tokens per latent block, at most 1 retrieval.
    Its ``<query>`` action row equals its ``<answer>`` row, so the two logits tie and argmax picks ``<query>``:
    the agent always retrieves once, then the cap makes it answer."""
    import json

    from safetensors.torch import load_file, save_file

    from laser_rag.latentrag.config import ANSWER, CONFIG_NAME, QUERY
    from laser_rag.latentrag.model import MODULES_FILE
    from laser_rag_training.latentrag.config import LatentRAGTrainConfig
    from laser_rag_training.latentrag.train import LatentTrainer

    folder = tmp_path_factory.mktemp("latentrag-untrained")
    torch.manual_seed(0)
    LatentTrainer(LatentRAGTrainConfig(), beta=0.03).save(folder, dtype=torch.float32)
    config = json.loads((folder / CONFIG_NAME).read_text())
    config.update(max_answer_tokens=4, max_decode_tokens=4, max_retrievals=1)
    (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2))
    modules = load_file(str(folder / MODULES_FILE))
    first = config["num_thought_tokens"] + config["num_query_tokens"]
    modules["special"][first + QUERY] = modules["special"][first + ANSWER]
    save_file(modules, str(folder / MODULES_FILE))
    return folder


@pytest.fixture
def notes_file():
    """``notes_file(folder, name="notes.md")``: a small markdown file of real text (the Python reference's first
    two topics)."""
    from laser_rag.corpus import pydoc_corpus

    def write(folder, name: str = "notes.md"):
        path = folder / name
        path.write_text("\n\n".join(f"# {doc.title}\n\n{doc.text}" for doc in pydoc_corpus()[:2]), encoding="utf-8")
        return path

    return write
