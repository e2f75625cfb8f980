"""Progress shows on a terminal only: never in a pipe, a file or JSON output."""

from __future__ import annotations

import sys

from tests.cli_support import run_on_terminal
from tickerserve.cli.progress import NO_PROGRESS, progress

SCRIPT = """
import sys, time
from tickerserve.cli.progress import progress
with progress(enabled=sys.argv[1] == "on") as track:
    step = track.step("hashing 3 files", total=3)
    for _ in range(3):
        step.advance()
    step.done()
    track.step("listing the bucket").done()
print("result")
"""


def test_on_a_terminal_each_step_shows_on_stderr_and_stdout_keeps_only_the_result():
    # When a command with two steps runs with its stderr on a terminal
    run = run_on_terminal([sys.executable, "-c", SCRIPT, "on"])
    # Then the terminal showed both steps, with the count, and stdout has the result alone
    assert run.code == 0, run.terminal
    assert "hashing 3 files" in run.terminal and "3/3" in run.terminal
    assert "listing the bucket" in run.terminal
    assert run.stdout == "result\n"


def test_when_disabled_a_terminal_sees_nothing():
    # When the command turns it off (as --json does)
    run = run_on_terminal([sys.executable, "-c", SCRIPT, "off"])
    # Then nothing reaches the terminal
    assert (run.code, run.terminal, run.stdout) == (0, "", "result\n")


def test_without_a_terminal_steps_are_no_ops(capsys):
    # Given stderr is not a terminal (a pipe, a CI log)
    with progress(enabled=True) as track:
        step = track.step("hashing", total=2)
        step.advance()
        step.describe("still hashing")
        step.done()
    # Then the tracker is the silent one and nothing was written
    assert track is NO_PROGRESS and not track.shown
    assert capsys.readouterr() == ("", "")
