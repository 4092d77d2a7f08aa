"""laser_rag: retrieval with LaSER latent-thinking embeddings (Jin et al., 2026).

The encoder is `LaSEREncoder`; framework adapters and the RAG pieces are imported on first use, so
``import laser_rag`` stays light and neither LlamaIndex nor LangChain is required for the encoder alone.
"""

from laser_rag.config import LaSERConfig
from laser_rag.encoder import LaSEREncoder, TruncationWarning
from laser_rag._models import ModelNotFoundError

__version__ = "0.1.0"

__all__ = [
    "LaSERConfig",
    "LaSEREncoder",
    "ModelNotFoundError",
    "TruncationWarning",
    "__version__",
]
