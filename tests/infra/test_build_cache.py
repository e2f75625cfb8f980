"""The build cache shared by the layer and the function assets."""

import os
import time

import pytest

from infra.build_cache import STALE_BUILD_SECONDS, building, prune


def test_a_build_appears_only_when_it_finished(tmp_path):
    target = tmp_path / "build-a"

    # Given a build that fails half-way
    def failing_build() -> None:
        with building(target, ".building-") as work:
            (work / "half.txt").write_text("half")
            raise RuntimeError("pip failed")

    with pytest.raises(RuntimeError, match=r"^pip failed$"):
        failing_build()
    # Then neither the target nor its work folder is left
    assert list(tmp_path.iterdir()) == []
    # When a build finishes, its folder is the target with what was built in it
    with building(target, ".building-") as work:
        (work / "done.txt").write_text("done")
    assert [p.name for p in tmp_path.iterdir()] == ["build-a"]
    assert (target / "done.txt").read_text() == "done"


def test_a_build_that_lost_a_race_keeps_the_winner(tmp_path):
    target = tmp_path / "build-a"
    with building(target, ".building-") as work:
        (work / "mine.txt").write_text("loser")
        target.mkdir()  # another process finished first
        (target / "theirs.txt").write_text("winner")
    assert [p.name for p in target.iterdir()] == ["theirs.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["build-a"]


def test_prune_keeps_the_newest_and_live_unfinished_builds(tmp_path):
    builds = [tmp_path / f"b{i}" for i in range(4)]
    for b in builds:
        b.mkdir()
    dead, live = tmp_path / ".building-dead", tmp_path / ".building-live"
    dead.mkdir()
    live.mkdir()
    old = time.time() - STALE_BUILD_SECONDS - 60
    os.utime(dead, (old, old))
    prune(((b, float(i)) for i, b in enumerate(builds)), 2, tmp_path.glob(".building-*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".building-live", "b2", "b3"]
