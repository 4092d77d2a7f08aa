"""``python -m laser_rag_training ...`` is ``laser-rag train ...``: train (or resume) a run."""

import typer

from laser_rag_training.cli import train

if __name__ == "__main__":
    typer.run(train)
