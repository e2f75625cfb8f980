"""Helpers for the CLI tests: an in-process runner and a store wrapper that injects faults."""

from __future__ import annotations

import builtins
import csv
import json
import os
import pty
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from tickerserve.cli.main import app
from tickerserve.layout import DEFAULT_REGISTRY_KEY
from tickerserve.storage.registry import Registry, read_registry
from tickerserve.storage.store import Blob, LocalStore, ObjectInfo, Store

REGISTRY = DEFAULT_REGISTRY_KEY

_runner = CliRunner()


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run ``tickerserve ARGS`` in process; stdout and stderr stay separate."""
    return _runner.invoke(app, list(args), env=env, catch_exceptions=False)


def cli_json(*args: str) -> Any:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def ts(store_path: str, *args: str) -> Result:
    """Run ``tickerserve --store STORE_PATH ARGS``."""
    return cli("--store", store_path, *args)


def refused(result: Result, message: str) -> None:
    """Exit code 2, the exact one-line message on stderr, nothing on stdout."""
    assert (result.exit_code, result.stderr, result.stdout) == (2, f"error: {message}\n", "")


def registry_of(store_path: str) -> Registry:
    """The registry of a local folder store, as it is now."""
    return read_registry(LocalStore(store_path), REGISTRY).registry


@dataclass
class FaultyStore:
    """Delegates to ``inner``; ``before_put(key)`` runs before every write (may raise) and every
    call is recorded, so tests can assert order and inject concurrent changes."""

    inner: Store
    before_put: Callable[[str], None] = lambda key: None
    calls: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def describe(self) -> str:
        return self.inner.describe()

    def get(
        self, key: str, *, if_none_match: str | None = None, size: int | None = None
    ) -> Blob | None:
        self._record("get", key)
        return self.inner.get(key, if_none_match=if_none_match, size=size)

    def put(self, key: str, data: bytes, **kwargs: Any) -> str:
        self._record("put", key)
        self.before_put(key)
        return self.inner.put(key, data, **kwargs)

    def head(self, key: str) -> ObjectInfo | None:
        self._record("head", key)
        return self.inner.head(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        self._record("list", prefix)
        return self.inner.list(prefix)

    def delete(self, keys: builtins.list[str]) -> None:
        for key in keys:
            self._record("delete", key)
        self.inner.delete(keys)

    def _record(self, op: str, key: str) -> None:
        with self.lock:
            self.calls.append((op, key))


def import_seed_json(store: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """Run ``import-seed ... --json`` against the folder store ``store``: the exit code and
    the report."""
    result = cli("--store", str(store), "import-seed", *args, "--json")
    assert result.stdout, result.stderr
    return result.exit_code, json.loads(result.stdout)


def write_csv(path: Path, columns: dict[str, list[Any]]) -> Path:
    """A CSV file with a header row, one column per key (a reference sample)."""
    names = list(columns)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for row in zip(*columns.values(), strict=True):
            writer.writerow(row)
    return path


@dataclass(frozen=True)
class TerminalRun:
    """A command run with its stderr on a terminal (a pseudo-terminal), stdout on a pipe."""

    code: int
    stdout: str
    terminal: str  # what the terminal received on stderr, control sequences included


def run_on_terminal(argv: list[str], *, timeout: float = 180.0) -> TerminalRun:
    """Run ``argv`` as a person in a terminal would see its stderr."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=env
    )
    os.close(slave)
    received = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    stdout, _ = process.communicate(timeout=timeout)
    reader.join(timeout=10)
    os.close(master)
    return TerminalRun(process.returncode, stdout.decode(), received.decode(errors="replace"))
