"""Progress on a terminal for commands that take a while (sync, import-seed, monitor run).

A command opens ``progress(enabled)`` around its work and hands the ``Tracker`` to its outer
loop, which opens one ``step`` per phase and advances it per item. On a terminal (stderr is a
TTY, and no ``--json``) that is a rich progress display on stderr that disappears when done;
otherwise every call is a no-op, so scripts, pipes and JSON output see nothing extra.
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from tickerserve.storage.store import Blob, ObjectInfo, Store

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class Step:
    """One phase of a command: ``advance`` per item done, ``describe`` to name the current one."""

    def __init__(self, bar: Progress | None = None, task: TaskID | None = None) -> None:
        self._bar = bar
        self._task = task

    def advance(self, n: int = 1) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, n)

    def describe(self, text: str) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=text)

    def done(self) -> None:
        """The phase is over: it shows as complete until the command ends."""
        if self._bar is not None and self._task is not None:
            task = next(t for t in self._bar.tasks if t.id == self._task)
            total = task.total if task.total is not None else max(task.completed, 1)
            self._bar.update(self._task, total=total, completed=total)
            self._task = None


class Tracker:
    """Hands out steps; a tracker without a display hands out no-op steps."""

    def __init__(self, bar: Progress | None = None) -> None:
        self._bar = bar

    @property
    def shown(self) -> bool:
        return self._bar is not None

    def step(self, description: str, total: int | None = None) -> Step:
        """A phase of ``total`` items (None: a spinner without a count)."""
        if self._bar is None:
            return Step()
        return Step(self._bar, self._bar.add_task(description, total=total))


NO_PROGRESS = Tracker()


def on_terminal() -> bool:
    """Whether a person watches: progress goes to stderr, so stderr must be a terminal."""
    return sys.stderr.isatty()


@contextmanager
def progress(enabled: bool) -> Iterator[Tracker]:
    """A tracker that shows on stderr while the block runs when ``enabled`` (and stderr is a
    terminal); the display is removed when the block ends."""
    if not (enabled and on_terminal()):
        yield NO_PROGRESS
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        yield Tracker(bar)


class ReadsCounted:
    """A store that advances ``step`` on every object it reads, so a command that hands a
    store to code it does not drive (the monitor run) can still show how far it got."""

    def __init__(self, store: Store, step: Step) -> None:
        self._store = store
        self._step = step

    def describe(self) -> str:
        return self._store.describe()

    def get(self, key: str, **kwargs: Any) -> Blob | None:
        blob = self._store.get(key, **kwargs)
        self._step.advance()
        return blob

    def put(self, key: str, data: bytes, **kwargs: Any) -> str:
        return self._store.put(key, data, **kwargs)

    def head(self, key: str) -> ObjectInfo | None:
        return self._store.head(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self._store.list(prefix)

    def delete(self, keys: builtins.list[str]) -> None:
        self._store.delete(keys)

    def __getattr__(self, name: str) -> Any:  # anything else a store offers (reset, ...)
        return getattr(self._store, name)
