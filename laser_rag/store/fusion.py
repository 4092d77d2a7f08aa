"""How a hybrid search fuses its dense and sparse candidates: the Qdrant fusion query (RRF or DBSF)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real
from typing import Any

from qdrant_client import models

from laser_rag import _checks
from laser_rag.errors import InvalidInputError, InvalidInputTypeError

#: How many candidates each side (dense, sparse) of a hybrid search prefetches before fusion (at least k).
HYBRID_PREFETCH = 100
#: Fusions of `VectorCollection.search_hybrid`: reciprocal rank fusion, distribution-based score fusion.
FUSIONS = {"rrf": models.Fusion.RRF, "dbsf": models.Fusion.DBSF}
#: The default fusion, chosen on the training validation sets by ``python -m laser_rag_benchmarks.fusion``
#: (its results: benchmarks/results/fusion.json).
DEFAULT_FUSION = "dbsf"
#: The rank constant of reciprocal rank fusion: a document at rank r (from 1) of a list scores 1 / (r + RRF_K - 1).
#: Qdrant's own default is 2, which lets either list's first hits decide alone.
RRF_K = 2


def fusion_query(fusion: str = DEFAULT_FUSION, *, rrf_k: int | None = None, weights: tuple[float, float] | None = None,
                 sparse: bool = True) -> models.FusionQuery | models.RrfQuery:
    """The Qdrant query that fuses a hybrid search's prefetches (dense first, then sparse when ``sparse``). A fusion
    name, rank constant or weights it cannot use raise `InvalidInputError` (a ValueError) saying what is accepted."""
    if not isinstance(fusion, str) or fusion not in FUSIONS:
        error = InvalidInputError if isinstance(fusion, str) else InvalidInputTypeError
        raise error(f"unknown fusion {fusion!r}: use one of {', '.join(FUSIONS)}")
    if fusion == "dbsf":
        if rrf_k is not None or weights is not None:
            raise InvalidInputError("rrf_k and weights apply to fusion='rrf' only")
        return models.FusionQuery(fusion=FUSIONS[fusion])
    rrf_k = RRF_K if rrf_k is None else _checks.positive_int(rrf_k, "rrf_k")
    if weights is not None:
        if not _two_positive_numbers(weights):
            raise InvalidInputError(f"weights are (dense, sparse), both positive finite numbers; got {weights!r}")
        weights = [float(w) for w in weights][:2 if sparse else 1]
    return models.RrfQuery(rrf=models.Rrf(k=rrf_k, weights=weights))


def _two_positive_numbers(weights: Any) -> bool:
    return (isinstance(weights, Sequence) and not isinstance(weights, str) and len(weights) == 2
            and all(isinstance(w, Real) and not isinstance(w, bool) and math.isfinite(w) and w > 0 for w in weights))
