"""Run an install command (pip) and say what it is doing, a few lines a minute.

    python tools/install_progress.py --step "what this step installs" -- python -m pip install ...

``pip -q`` is silent for minutes on a first install; plain pip prints a few hundred lines. This
runs pip without ``-q`` and condenses its output: one line when a phase starts (resolving,
downloading, building a wheel from source, installing) and, within a phase, at most one line
every ``--every`` seconds with the count so far; pip's warnings and errors pass through as they
are. When the command fails, its last lines are printed in full and its exit code returned.

Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

PREFIX = "[make install]"
TAIL_LINES = 40
_COLLECTING = re.compile(r"^(?:Collecting|Processing) (\S+)")
_DOWNLOADING = re.compile(r"^\s*Downloading (\S+)(?: \(([\d.]+) (kB|MB|GB)\))?")
_CACHED = re.compile(r"^\s*Using cached (\S+)")
_BUILDING = re.compile(r"^\s*Building (?:wheel|editable) for (\S+)(?!.*: finished)")
_INSTALLING = re.compile(r"^Installing collected packages: (.*)$")
_INSTALLED = re.compile(r"^Successfully installed (.*)$")
_SATISFIED = re.compile(r"^Requirement already satisfied: (\S+)")
_PASSED_ON = ("ERROR", "WARNING", "error:", "npm ERR", "npm error", "npm warn")
_UNITS = {"kB": 1e3, "MB": 1e6, "GB": 1e9}
_QUOTED = re.compile(r"'[^']*'")


@dataclass
class Progress:
    """Condenses an installer's output lines into progress lines."""

    say: Callable[[str], None]
    every: float = 5.0
    clock: Callable[[], float] = time.monotonic
    collected: int = 0
    downloaded: int = 0
    cached: int = 0
    download_bytes: float = 0.0
    satisfied: int = 0
    installed: int = 0
    phase: str = ""
    repeated: int = 0  # warnings not printed again: the same words, another package
    _last: float = field(default=float("-inf"))
    _started: float | None = None
    _shapes: set[str] = field(default_factory=set)

    def feed(self, line: str) -> None:
        """One line of the installer's output."""
        if self._started is None:
            self._started = self.clock()
        line = line.rstrip("\n")
        if line.startswith(_PASSED_ON):
            # A pip configuration can warn once per package (an index folder without that
            # package): say each warning once, and count its repeats for the summary.
            shape = _QUOTED.sub("'…'", line)
            if shape in self._shapes:
                self.repeated += 1
            else:
                self._shapes.add(shape)
                self.say(line)
        elif m := _COLLECTING.match(line):
            self.collected += 1
            self._tick(m.group(1))
        elif m := _DOWNLOADING.match(line):
            self.downloaded += 1
            if m.group(2):
                self.download_bytes += float(m.group(2)) * _UNITS[m.group(3)]
            self._tick()
        elif _CACHED.match(line):
            self.cached += 1
            self._tick()
        elif m := _BUILDING.match(line):
            self._phase("building", f"building {m.group(1)}")
        elif m := _INSTALLING.match(line):
            count = len([p for p in m.group(1).split(",") if p.strip()])
            self._phase("installing", f"installing {count} packages")
        elif m := _INSTALLED.match(line):
            self.installed = len(m.group(1).split())
        elif _SATISFIED.match(line):
            self.satisfied += 1

    def summary(self) -> str:
        seconds = self.clock() - (self._started if self._started is not None else self.clock())
        repeats = (
            f" ({self.repeated} more warning(s) like those above not shown)"
            if self.repeated
            else ""
        )
        if self.installed:
            cached = f", {self.cached} from pip's cache" if self.cached else ""
            return f"done: {self.installed} packages installed in {seconds:.0f} s{cached}{repeats}"
        return f"done: nothing new to install ({self.satisfied} already there){repeats}"

    def _phase(self, phase: str, text: str) -> None:
        self.phase = phase
        self._last = self.clock()
        self.say(f"  {text}")

    def _tick(self, latest: str | None = None) -> None:
        """While packages are resolved and downloaded: a line when that starts, then at most
        one every ``every`` seconds with the counts so far."""
        now = self.clock()
        if self.phase == "fetching" and now - self._last < self.every:
            return
        self.phase, self._last = "fetching", now
        fetched = f"{self.downloaded} downloaded ({self.download_bytes / 1e6:.0f} MB)"
        if self.cached:
            fetched += f", {self.cached} from pip's cache"
        about = f", now {latest}" if latest else ""
        self.say(f"  fetching: {self.collected} packages resolved, {fetched}{about}")


def run(command: Sequence[str], step: str, every: float, say: Callable[[str], None]) -> int:
    """Run ``command``, condensing its output; its exit code."""
    say(step)
    progress = Progress(say, every)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
    )
    assert process.stdout is not None
    for line in process.stdout:
        tail.append(line.rstrip("\n"))
        progress.feed(line)
    code = process.wait()
    if code != 0:
        say(f"failed (exit code {code}); the last {len(tail)} lines of its output:")
        for line in tail:
            print(line, flush=True)
        return code
    say(f"  {progress.summary()}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--step", required=True, help="What this step installs (one line).")
    parser.add_argument("--every", type=float, default=5.0, help="Seconds between lines.")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command.")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")

    def say(text: str) -> None:
        print(f"{PREFIX} {text}", flush=True)

    try:
        return run(command, args.step, args.every, say)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
