"""Bytecode for the Lambda runtime's Python, byte-identical whichever machine builds it.

Lambda unpacks code to read-only folders (``/var/task``, ``/opt``): a module without a
matching ``.pyc`` is compiled on every cold start. The dependency layer and the function
asset are therefore compiled here, by an interpreter of the runtime's version (a ``.pyc``
carries that version's magic number), with three rules that keep the bytes independent of
the building machine:

- unchecked-hash pycs: no source mtime inside, and valid whatever mtimes a zip round trip
  leaves behind (the sources are never edited in place in Lambda);
- each file compiled under the path it will have in Lambda (a ``.pyc`` records its source
  path for tracebacks; the build folder would differ from machine to machine);
- a fixed hash seed for the compiler, sorted walks and fixed mtimes on every staged file.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

RUNTIME_PYTHON = "3.13"
# 1980-01-01T00:00:00Z, the earliest time a zip entry can record.
FIXED_MTIME = 315532800
# What a build without bytecode costs, measured on the synthesized assets under Python 3.13
# (bench section 3b: handler import without the function's .pyc, and without any bytecode).
MISSING_PYTHON_WARNING = (
    f"Python {RUNTIME_PYTHON} (the Lambda runtime's version) is not installed: the function "
    "code and the dependency layer are built without bytecode, so every cold start compiles "
    "them (measured: tickerserve about +0.05 s, numpy and Powertools about +0.8 s). Install "
    f"it (e.g. `pyenv install {RUNTIME_PYTHON}`, or python{RUNTIME_PYTHON} on PATH) and "
    "synthesize again."
)


class BytecodeError(RuntimeError):
    """A source file did not compile."""


@functools.cache
def find_python(version: str = RUNTIME_PYTHON) -> Path | None:
    """An installed CPython ``version`` (PATH first, then pyenv), or None."""
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(
        (str(p) for p in (Path.home() / ".pyenv" / "versions").glob(f"{version}.*/bin/python3")),
        reverse=True,
    )
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    for candidate in filter(None, candidates):
        try:
            out = subprocess.run(
                [candidate, "-I", "-c", probe], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == version:
            return Path(candidate)
    return None


def compile_tree(python: Path, tree: Path, runtime_dir: str) -> None:
    """Write ``__pycache__/*.pyc`` beside every ``.py`` under ``tree``, each recording the
    path it will have once ``tree`` is unpacked at ``runtime_dir`` (e.g. ``/var/task``)."""
    command = [
        str(python),
        "-s",  # no user site-packages: only the standard library's compileall runs
        "-m",
        "compileall",
        "-q",
        "-j0",
        "--invalidation-mode",
        "unchecked-hash",
        "-d",
        runtime_dir,
        str(tree),
    ]
    # PYTHONHASHSEED: set and frozenset constants must not depend on a random seed.
    # SOURCE_DATE_EPOCH would make compileall pick checked-hash pycs on its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.pop("SOURCE_DATE_EPOCH", None)
    env["PYTHONHASHSEED"] = "0"
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BytecodeError(
            f"compileall failed under {python}:\n{result.stdout[-4000:]}{result.stderr[-2000:]}"
        )


def fix_mtimes(tree: Path) -> None:
    """Give every file and folder under ``tree`` the same mtime, so an archive of the same
    content is the same bytes wherever and whenever it was staged."""
    paths = sorted(tree.rglob("*"))
    for path in [*paths, tree]:
        os.utime(path, (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)


def warn_missing_python() -> None:
    """Print the missing-interpreter warning (for the command-line entry points)."""
    print(f"warning: {MISSING_PYTHON_WARNING}", file=sys.stderr)
