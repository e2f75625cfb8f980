"""Dates on the command line: ``YYYY-MM-DD`` or a refusal naming the option."""

from __future__ import annotations

from datetime import date

import pytest

from tests.cli_support import refused, ts
from tickerserve.cli.dates import parse_day
from tickerserve.cli.errors import Refused


def test_an_iso_day_is_read_and_an_absent_option_is_none():
    assert parse_day("2026-12-01", "--since") == date(2026, 12, 1)
    assert parse_day(None, "--since") is None


@pytest.mark.parametrize("raw", ["01/12/2026", "2026-13-01", "yesterday", ""])
def test_anything_else_is_refused_naming_the_option(raw: str):
    with pytest.raises(Refused) as caught:
        parse_day(raw, "--until")
    assert caught.value.message == f"--until {raw!r}: expected a date YYYY-MM-DD"


def test_the_command_line_refuses_a_bad_day_before_reading_anything(store_path: str):
    refused(
        ts(store_path, "monitor", "run", "--since", "2026-02-30"),
        "--since '2026-02-30': expected a date YYYY-MM-DD",
    )
