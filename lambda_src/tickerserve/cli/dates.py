"""Dates given on the command line (``--since``, ``--until``)."""

from __future__ import annotations

from datetime import date

from tickerserve.cli.errors import Refused


def parse_day(raw: str | None, option: str) -> date | None:
    """``YYYY-MM-DD`` -> a date (None when the option was not given)."""
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise Refused(f"{option} {raw!r}: expected a date YYYY-MM-DD") from None
