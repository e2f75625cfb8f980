"""A folder of finished builds (the layer's, the function assets'): each build is made beside
its target and renamed into place at the end, so an interrupted build never looks finished,
and only the newest few are kept."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

# An unfinished build folder this old belongs to a build that died (a live one is minutes old).
STALE_BUILD_SECONDS = 3600


@contextmanager
def building(target: Path, prefix: str) -> Iterator[Path]:
    """Yield an empty folder to build ``target`` in; renamed to ``target`` when the block
    ends normally, removed when it raises."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    try:
        yield work
        if target.exists():  # a concurrent build finished first; keep its result
            shutil.rmtree(work)
        else:
            work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def prune(finished: Iterable[tuple[Path, float]], keep: int, unfinished: Iterable[Path]) -> None:
    """Keep the ``keep`` newest of ``finished`` (folder, when it finished); drop the rest and
    the ``unfinished`` build folders older than ``STALE_BUILD_SECONDS``."""
    newest_first = [path for path, _ in sorted(finished, key=lambda f: f[1], reverse=True)]
    now = time.time()
    stale = [p for p in unfinished if now - p.stat().st_mtime > STALE_BUILD_SECONDS]
    for path in [*newest_first[keep:], *stale]:
        shutil.rmtree(path, ignore_errors=True)
