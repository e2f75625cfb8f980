"""How failures reach the user: one ``error:`` line on stderr and an exit code that says
whether nothing was written (2), something failed (1) or the user interrupted (130)."""

from __future__ import annotations

import pytest

from tests.cli_support import cli
from tickerserve.cli.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_REFUSED,
    Failed,
    Refused,
    exit_code_for,
    one_line,
)
from tickerserve.errors import Conflict, StorageUnavailable
from tickerserve.publishing.release import Incomplete


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (KeyboardInterrupt(), EXIT_INTERRUPTED),
        (StorageUnavailable("bucket unreachable"), EXIT_FAILED),
        (Failed("2 uploads failed"), EXIT_FAILED),
        (Incomplete("written, but the history was not"), EXIT_FAILED),
        (Refused("bad name"), EXIT_REFUSED),
        (Conflict("alias in use"), EXIT_REFUSED),
        (ValueError("invalid alias"), EXIT_REFUSED),
        (RuntimeError("boom"), EXIT_FAILED),
    ],
)
def test_each_failure_has_its_exit_code(exc: BaseException, code: int):
    assert exit_code_for(exc) == code


def test_every_message_is_one_line_prefixed_error():
    assert one_line(Refused("a\n  multi-line\tmessage")) == "error: a multi-line message"
    assert one_line(ValueError("invalid alias 'X'")) == "error: invalid alias 'X'"
    assert one_line(KeyboardInterrupt()) == "error: interrupted"
    assert one_line(RuntimeError("boom")) == "error: unexpected RuntimeError: boom"


def test_a_refusal_codes_as_a_400_refused():
    refusal = Refused("no")
    assert (refusal.status, refusal.code) == (400, "refused")
    assert (Failed("x").status, Failed("x").code) == (500, "failed")


def test_the_command_line_prints_one_line_and_exits_with_the_code(tmp_path):
    result = cli("--store", str(tmp_path), "promote", "etfs/SMH", "1.0.0")
    assert result.exit_code == EXIT_REFUSED
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
