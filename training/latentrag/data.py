"""The trajectories a LatentRAG run trains on, with everything the losses need precomputed once.

Each source's trajectories (`laser_rag_training.trajectories`) retrieve from that source's pool with the frozen
reference retriever (the model the documents are indexed with): the top-k of each text subquery become the step's
documents c_t (a trajectory is kept only if some step found gold evidence), and the top-`pseudo_relevant` are the
subquery's pseudo-relevant set, whose reference vectors give the target distribution p of eqs. 7-8. The result is
cached in the run directory, so a resumed run trains on the same data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from laser_rag.latentrag import functional as LF
from laser_rag_training.latentrag.config import LatentRAGTrainConfig
from laser_rag_training.trajectories import Trajectory, attach_documents, build_trajectories, trajectory_corpus

logger = logging.getLogger(__name__)

DATA_FILE = "data.pt"


@dataclass
class Prepared:
    trajectories: list[Trajectory]
    #: [steps, D] reference (text) vectors of each trajectory's subqueries.
    reference: list[np.ndarray]
    #: Per trajectory and step: indices into ``doc_vectors`` of the pseudo-relevant documents, best first.
    pseudo: list[list[list[int]]]
    #: Reference vectors of every pooled document (all sources).
    doc_vectors: np.ndarray
    beta: float

    def to_state(self) -> dict:
        return {"trajectories": [t.to_dict() for t in self.trajectories], "reference": self.reference,
                "pseudo": self.pseudo, "doc_vectors": self.doc_vectors, "beta": self.beta}

    @classmethod
    def from_state(cls, state: dict) -> Prepared:
        return cls([Trajectory.from_dict(t) for t in state["trajectories"]], state["reference"], state["pseudo"],
                   state["doc_vectors"], state["beta"])


def prepare(config: LatentRAGTrainConfig, run: Path | None = None, encoder=None) -> Prepared:
    """Build (or load from ``run/data.pt``) the run's trajectories, documents, pseudo-relevant sets and beta."""
    cached = run / DATA_FILE if run is not None else None
    if cached is not None and cached.is_file():
        return Prepared.from_state(torch.load(cached, weights_only=False))
    if encoder is None:
        from laser_rag.encoders import load_encoder

        encoder = load_encoder(config.retriever)
    kept: list[Trajectory] = []
    reference, pseudo, pools = [], [], []
    offset = 0
    for source, count in config.sources.items():
        trajectories = build_trajectories((source,), per_source=count)
        corpus = trajectory_corpus(source)
        vectors = encoder.encode_documents([encoder.document_text(d.title, d.text) for d in corpus], batch_size=64)
        # every subquery is encoded and ranked once: its top-k are the step's documents, its top
        # `pseudo_relevant` the KL's candidates, its vector the reference
        subqueries = list(dict.fromkeys(step.subquery for t in trajectories for step in t.steps))
        query_vectors = encoder.encode_queries(subqueries, batch_size=64) if subqueries else vectors[:0]
        ranked = np.argsort(-(query_vectors @ vectors.T), axis=1)[:, :max(config.pseudo_relevant, config.top_k)]
        row_of = {text: row for row, text in enumerate(subqueries)}

        def search(queries: list[str]) -> list[list[tuple[str, str]]]:
            return [[(corpus[i].title, corpus[i].text) for i in ranked[row_of[q], :config.top_k]] for q in queries]

        for trajectory in attach_documents(trajectories, search, k=config.top_k):
            rows = [row_of[step.subquery] for step in trajectory.steps]
            kept.append(trajectory)
            reference.append(query_vectors[rows].astype(np.float32))
            pseudo.append([[int(i) + offset for i in ranked[row, :config.pseudo_relevant]] for row in rows])
        pools.append(vectors)
        offset += len(corpus)
        logger.info("%s: %d of %d trajectories found gold evidence", source, sum(t.source == source for t in kept),
                    len(trajectories))
    doc_vectors = np.concatenate(pools).astype(np.float32)
    beta = config.beta or _calibrate(reference, pseudo, doc_vectors, config)
    prepared = Prepared(kept, reference, pseudo, doc_vectors, beta)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.save(prepared.to_state(), cached)
    return prepared


def candidates(pseudo: list[list[int]]) -> list[int]:
    """The KL's candidate set: every subquery's pseudo-relevant documents (in-batch), deduplicated in order."""
    return list(dict.fromkeys(i for row in pseudo for i in row))


def _calibrate(reference, pseudo, doc_vectors, config: LatentRAGTrainConfig) -> float:
    """The median over batch-sized groups of subqueries of the beta at which the top-3 hold ``beta_top_mass``."""
    flat_ref = [v for vectors in reference for v in vectors]
    flat_pseudo = [row for rows in pseudo for row in rows]
    group = max(2, 2 * config.batch_size)  # about the subqueries of one batch
    betas = []
    for start in range(0, len(flat_ref) - group + 1, group):
        rows = flat_pseudo[start:start + group]
        docs = torch.from_numpy(doc_vectors[candidates(rows)])
        refs = torch.from_numpy(np.stack(flat_ref[start:start + group]))
        betas.append(LF.calibrate_beta(refs, docs, top=3, target=config.beta_top_mass))
    if not betas:
        return 0.03  # the paper's value
    return float(np.median(betas))
