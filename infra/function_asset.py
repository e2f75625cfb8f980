"""The prediction function's code asset: tickerserve's serving modules and their bytecode.

Staged under ``build/function/<key>/code`` (the key hashes the included sources, the
recipe and whether bytecode was compiled), so synthesizing again reuses the build. The
CDK asset hash is the fingerprint of that folder: paths and contents only, which the
deterministic bytecode keeps the same on every machine with the runtime's Python.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from infra.build_cache import building, prune
from infra.bytecode import RUNTIME_PYTHON, compile_tree, fix_mtimes

ROOT = Path(__file__).resolve().parent.parent
CODE_ROOT = ROOT / "lambda_src"
CACHE_ROOT = ROOT / "build" / "function"
# Where Lambda unpacks a function's code: the source path its bytecode records.
TASK_ROOT = "/var/task"
# Bump when staging changes in a way that alters the output.
RECIPE = "1"
# Never shipped in a function asset: bytecode of the build host (the asset's own is compiled
# for the runtime's Python), packaging metadata, the layer's requirements file, and the
# command line (no function runs it).
SHARED_EXCLUDES = [
    "**/__pycache__",
    "**/*.pyc",
    "*.egg-info",
    "requirements.txt",
    ".*",
    "tickerserve/cli",
]
# The prediction function's: also the publisher side (the publishing library: code the
# handler never imports; it would only add bytes to every cold start's code download).
CODE_EXCLUDES = [
    *SHARED_EXCLUDES,
    "tickerserve/publishing",
    "tickerserve/monitor",  # the monitor function's own asset carries it
]
# Finished builds kept, for both functions' assets (switching branches or editing should not
# pile up folders).
KEEP_BUILDS = 6
STAGING_PREFIX = ".staging-"


@dataclass(frozen=True)
class FunctionAsset:
    """A staged function asset: the folder to hand to ``Code.from_asset``."""

    path: Path
    bytecode: bool


def stage_function_code(
    source: Path,
    exclude: Sequence[str],
    *,
    python: Path | None,
    cache_root: Path = CACHE_ROOT,
) -> FunctionAsset:
    """Copy ``source`` minus ``exclude`` and compile it with ``python`` (a runtime-version
    interpreter; None ships sources only). Returns the cached build when nothing changed."""
    files = sorted(included_files(source, exclude))
    key = _key(source, files, bytecode=python is not None)
    target = cache_root / key
    if target.is_dir():
        return FunctionAsset(target / "code", python is not None)
    with building(target, STAGING_PREFIX) as work:
        code = work / "code"
        for relative in files:
            destination = code / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / relative, destination)
        if python is not None:
            compile_tree(python, code, TASK_ROOT)
        fix_mtimes(code)
        work.chmod(0o755)
    finished = [p for p in cache_root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    prune(
        ((p, p.stat().st_mtime) for p in finished),
        KEEP_BUILDS,
        cache_root.glob(f"{STAGING_PREFIX}*"),
    )
    return FunctionAsset(target / "code", python is not None)


def included_files(source: Path, exclude: Sequence[str]) -> Iterator[PurePosixPath]:
    """Files under ``source`` (relative paths) that no ``exclude`` pattern matches.

    Patterns follow CDK's glob excludes: one with a ``/`` matches the path from ``source``
    (``tickerserve/cli``), ``**/name`` and a bare name match at any depth (``*.pyc``); an
    excluded folder drops everything inside it.
    """
    for folder, dirs, names in os.walk(source):
        here = PurePosixPath(Path(folder).relative_to(source).as_posix())
        dirs[:] = sorted(d for d in dirs if not _excluded(here / d, exclude))
        for name in sorted(names):
            path = here / name
            if not _excluded(path, exclude) and (source / path).is_file():
                yield path


def _excluded(path: PurePosixPath, patterns: Sequence[str]) -> bool:
    for pattern in patterns:
        if pattern.startswith("**/"):
            pattern = pattern[3:]
        if "/" in pattern:
            if fnmatch.fnmatchcase(path.as_posix(), pattern):
                return True
        elif fnmatch.fnmatchcase(path.name, pattern):
            return True
    return False


def _key(source: Path, files: Sequence[PurePosixPath], *, bytecode: bool) -> str:
    digest = hashlib.sha256(f"{RECIPE}\0{RUNTIME_PYTHON if bytecode else 'no-pyc'}".encode())
    for relative in files:
        content = hashlib.sha256((source / relative).read_bytes()).hexdigest()
        digest.update(f"\0{relative}\0{content}".encode())
    return digest.hexdigest()[:20]
