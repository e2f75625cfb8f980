"""Output: JSON for scripts (``--json``), aligned plain text for people, notes on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def note(message: str) -> None:
    """A one-line remark for the user on stderr (never mixed into JSON on stdout)."""
    typer.echo(message, err=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces; empty cells print as ``-``."""
    cells = [[str(h) for h in headers]] + [
        ["-" if c is None or c == "" else str(c) for c in row] for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def format_metrics(metrics: dict[str, float], limit: int = 4) -> str:
    items = [f"{k}={v:g}" for k, v in sorted(metrics.items())]
    if len(items) > limit:
        items = [*items[:limit], f"+{len(items) - limit}"]
    return " ".join(items)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def is_terminal() -> bool:
    return sys.stdout.isatty()
