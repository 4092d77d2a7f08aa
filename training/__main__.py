"""``python -m training ...`` is ``laser-rag train ...`` (`laser_rag.cli.train`): train (or resume) a run."""

import sys

from laser_rag.cli import app

if __name__ == "__main__":
    app(["train", *sys.argv[1:]], prog_name="python -m training")
