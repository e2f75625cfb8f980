"""make install's progress lines: a first install says what it is doing, a few lines a minute,
and a failed one shows why."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tools.install_progress import Progress, main

# What pip prints (without -q) for a first install, as it does here: local wheels, downloads,
# cached files, an editable build, the install.
PIP_OUTPUT = """\
Looking in indexes: https://pypi.org/simple
Obtaining file:///home/me/tickerserve
  Installing build dependencies: started
Processing /opt/six-1.17.0.whl
Collecting numpy==2.3.5
  Downloading numpy-2.3.5-cp311-cp311-manylinux_2_28_x86_64.whl (16.6 MB)
Collecting lightgbm==4.6.0
  Using cached lightgbm-4.6.0-py3-none-manylinux_2_28_x86_64.whl (3.6 MB)
Collecting idna<4,>=2.5 (from requests)
  Downloading idna-3.21-py3-none-any.whl (69 kB)
WARNING: The candidate selected for download or install is a yanked version: 'x'
Building wheels for collected packages: tickerserve
  Building editable for tickerserve (pyproject.toml): started
  Building editable for tickerserve (pyproject.toml): finished with status 'done'
  Created wheel for tickerserve: filename=tickerserve-0.1.0-0.editable-py3-none-any.whl
Successfully built tickerserve
Installing collected packages: six, numpy, lightgbm, idna, tickerserve
Successfully installed idna-3.21 lightgbm-4.6.0 numpy-2.3.5 six-1.17.0 tickerserve-0.1.0
"""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_first_install_is_a_few_lines_that_say_what_happens():
    # Given pip's output for a first install, one line a second
    said: list[str] = []
    clock = Clock()
    progress = Progress(said.append, every=5.0, clock=clock)
    for line in PIP_OUTPUT.splitlines():
        progress.feed(line)
        clock.now += 1.0
    # Then fetching is one line when it starts and one 5 s later, with counts, then each
    # later phase one line, warnings as they are, and a summary
    assert said == [
        "  fetching: 1 packages resolved, 0 downloaded (0 MB), now /opt/six-1.17.0.whl",
        "  fetching: 4 packages resolved, 1 downloaded (17 MB), 1 from pip's cache, now idna<4,>=2.5",  # noqa: E501
        "WARNING: The candidate selected for download or install is a yanked version: 'x'",
        "  building tickerserve",
        "  installing 5 packages",
    ]  # fmt: skip
    assert progress.summary() == "done: 5 packages installed in 18 s, 1 from pip's cache"


def test_a_long_resolution_prints_one_line_every_few_seconds_not_one_per_package():
    said: list[str] = []
    clock = Clock()
    progress = Progress(said.append, every=5.0, clock=clock)
    for i in range(200):  # 200 packages over 100 seconds
        progress.feed(f"Collecting package-{i}")
        progress.feed(f"  Downloading package_{i}-1.0-py3-none-any.whl (1.0 MB)")
        clock.now += 0.5
    assert 19 <= len(said) <= 21
    assert said[-1].startswith("  fetching: 191 packages resolved, 190 downloaded (190 MB)")


def test_nothing_to_install_says_so():
    progress = Progress(lambda line: None)
    progress.feed("Requirement already satisfied: numpy in ./.venv/lib/python3.11/site-packages")
    assert progress.summary() == "done: nothing new to install (1 already there)"


def run_main(tmp_path: Path, script: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    program = tmp_path / "fake_pip.py"
    program.write_text(script)
    code = main(["--step", "pip: test packages", "--", sys.executable, str(program)])
    return code, capsys.readouterr().out


def test_the_command_runs_with_its_output_condensed(tmp_path: Path, capsys):
    code, out = run_main(
        tmp_path,
        "print('Collecting numpy')\nprint('Installing collected packages: numpy')\n"
        "print('Successfully installed numpy-2.3.5')\n",
        capsys,
    )
    assert code == 0
    assert out.splitlines() == [
        "[make install] pip: test packages",
        "[make install]   fetching: 1 packages resolved, 0 downloaded (0 MB), now numpy",
        "[make install]   installing 1 packages",
        out.splitlines()[-1],
    ]
    assert out.splitlines()[-1].startswith("[make install]   done: 1 packages installed in ")


def test_a_failed_install_shows_its_last_lines_and_exit_code(tmp_path: Path, capsys):
    # Given an installer that fails after saying why
    code, out = run_main(
        tmp_path,
        "import sys\nprint('Collecting nonexistent==9')\n"
        "print('  Could not find a version that satisfies the requirement nonexistent==9')\n"
        "sys.exit(3)\n",
        capsys,
    )
    # Then its exit code is returned and its own lines are shown, so the reason is on screen
    assert code == 3
    assert "[make install] failed (exit code 3); the last 2 lines of its output:" in out
    assert "Could not find a version that satisfies the requirement nonexistent==9" in out


def test_a_warning_repeated_for_every_package_is_said_once_and_counted():
    # Given a pip configuration whose second index folder lacks every package
    said: list[str] = []
    progress = Progress(said.append, every=5.0, clock=Clock())
    for package in ("pip", "lightgbm", "boto3"):
        progress.feed(
            f"WARNING: Location 'file:///opt/more/simple/{package}/' is ignored: "
            "it is neither a file nor a directory."
        )
    progress.feed("WARNING: The candidate selected for download is a yanked version: 'x'")
    # Then the first of its kind is shown, the others only counted in the summary
    assert said == [
        "WARNING: Location 'file:///opt/more/simple/pip/' is ignored: "
        "it is neither a file nor a directory.",
        "WARNING: The candidate selected for download is a yanked version: 'x'",
    ]
    assert progress.summary() == (
        "done: nothing new to install (0 already there) "
        "(2 more warning(s) like those above not shown)"
    )
