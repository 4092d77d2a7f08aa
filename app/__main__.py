"""``python -m laser_rag_app ...`` is ``laser-rag demo ...``: start the web app."""

import typer

from laser_rag_app.cli import demo

if __name__ == "__main__":
    typer.run(demo)
