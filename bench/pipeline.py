"""Section 9: the prediction path of this tree against an older one (``--against REF``, by
default the git tag ``before-issue-16``), in the same run.

The older tree's ``lambda_src`` is exported with ``git archive`` into
``build/bench-baseline/{sha}/`` (once per commit). Each tree publishes the same boosters (the
cached seed classifiers', 11 models of 36 features and 500 trees) into its own folder store
with its own code (an older tree reads only its own registry schema), then serves them in its
own warm process (``bench/pipeline_child.py``); the parent asks the two for blocks in turn
(old, new, new, old, ...), so a noisy neighbour on this shared machine hurts both alike, and
only one of them runs at a time. Per block, each process times, through ``Api.handle`` with
REST v1 events: single-row requests (64 distinct rows cycled) with capture off and on (records
written to a pipe another process drains, as in Lambda), and a 1,000-item batch (15 tickers on
the 11 models) with capture off and on. Reported: per-block p50 and p90, their median over
blocks, and the median of the per-block ratios new/old. Before timing, both trees answer the
same requests and the section stops if an answer or capture record differs in a field both
give (a field only one tree has, such as one added since, is named in the report).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT, median, ms, percentile, rest_event, say, table, us

DEFAULT_REF = "before-issue-16"
BASELINES = ROOT / "build" / "bench-baseline"
NOISE = 1.05  # a ratio new/old up to this is "no slower" on this shared machine
ROWS = (
    ("single_off", "Api.handle, one row, capture off", "us"),
    ("single_on", "Api.handle, one row, capture on", "us"),
    ("batch_off", "Api.handle, 1,000-item batch, capture off", "ms"),
    ("batch_on", "Api.handle, 1,000-item batch, capture on", "ms"),
)


@dataclass(frozen=True)
class Plan:
    """How much to measure: blocks per side, and calls per variant in each block."""

    blocks: int
    single: int
    batch: int

    @classmethod
    def make(cls, quick: bool) -> Plan:
        return cls(blocks=10, single=150, batch=2) if quick else cls(blocks=24, single=250, batch=3)


def export_tree(ref: str) -> tuple[str, Path]:
    """The commit ``ref`` names and its ``lambda_src`` exported under ``build/bench-baseline/``."""
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        raise LookupError(f"git knows no commit {ref!r} in {ROOT}")
    sha = found.stdout.strip()
    target = BASELINES / sha
    done = target / ".exported"
    if not done.exists():
        archive = subprocess.run(
            ["git", "archive", "--format=tar", sha, "lambda_src"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
        done.write_text(ref + "\n")
    return sha, target / "lambda_src"


class Side:
    """One tree: its models published with its own code, then its warm serving process."""

    def __init__(self, name: str, tree: Path, work: Path, spec: dict[str, Any]) -> None:
        self.name = name
        folder = work / f"pipeline-{name}"
        store = folder / "store"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKERSERVE_")}
        env.update(
            PYTHONPATH=str(tree),
            TICKERSERVE_STORE_PATH=str(store),
            TICKERSERVE_CACHE_DIR=str(folder / "cache"),
            TICKERSERVE_MEMORY_MB="4096",
            TICKERSERVE_DISK_MB="2048",
            # A registry TTL longer than the run: no re-check lands inside a timed block.
            TICKERSERVE_REGISTRY_TTL="86400",
        )
        spec_path = folder / "spec.json"
        folder.mkdir(parents=True, exist_ok=True)
        spec_path.write_text(json.dumps({**spec, "store": str(store)}))
        child = [sys.executable, "-m", "bench.pipeline_child"]
        published = subprocess.run(
            [*child, "publish", str(tree), str(spec_path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if published.returncode != 0:
            raise RuntimeError(f"the {name} tree could not publish:\n{published.stderr[-3000:]}")
        self.proc = subprocess.Popen(
            [*child, "serve", str(tree), str(spec_path)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.ready: dict[str, Any] = self._read()["ready"]

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            assert self.proc.stderr is not None
            raise RuntimeError(f"the {self.name} child failed:\n{self.proc.stderr.read()[-3000:]}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def block(self, plan: Plan) -> dict[str, Any]:
        assert self.proc.stdin is not None
        command = {"op": "block", "single": plan.single, "batch": plan.batch}
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


IGNORED = frozenset({"time", "latency_us"})  # what differs between any two captures of a row


def compare(old: Any, new: Any, path: str, found: list[str], one_sided: set[str]) -> None:
    """Append to ``found`` where ``old`` and ``new`` differ, field by field; a field only one
    tree gives (one added since) goes to ``one_sided`` instead."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            if key in IGNORED:
                continue
            if key not in old or key not in new:
                one_sided.add(f"{key} ({'new' if key in new else 'old'} only)")
                continue
            compare(old[key], new[key], f"{path}.{key}", found, one_sided)
    elif isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            found.append(f"{path}: {len(old)} != {len(new)} items")
            return
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            compare(a, b, f"{path}[{i}]", found, one_sided)
    elif old != new:
        found.append(f"{path}: {old!r} != {new!r}")


def _agreement(old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    """Check that the trees answered and captured the check rows alike (records in request id
    order: the order of a batch's records is no contract); returns the one-sided fields."""

    def records(ready: dict[str, Any]) -> list[dict[str, Any]]:
        return sorted(ready["records"], key=lambda r: (r["request_id"], r["source"]))

    found: list[str] = []
    one_sided: set[str] = set()
    compare(old["answers"], new["answers"], "answers", found, one_sided)
    compare(records(old), records(new), "records", found, one_sided)
    if found:
        shown = "\n".join(d[:300] for d in found[:5])
        raise RuntimeError(f"the trees answer or capture the same rows differently:\n{shown}")
    return one_sided


def run(
    *,
    quick: bool,
    against: str,
    work: Path,
    models: list[dict[str, Any]],
    single_bodies: list[dict[str, Any]],
    batch_items: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """Time both trees. ``models``: what each tree publishes (name, the seed artifacts'
    folder, asset class, routes)."""
    plan = Plan.make(quick)
    try:
        sha, old_tree = export_tree(against)
    except LookupError as exc:
        say(f"\n9. skipped: {exc} (pass --against REF)")
        return None
    new_tree = ROOT / "lambda_src"
    check_items = [{**item, "request_id": f"check-{i}"} for i, item in enumerate(batch_items[:30])]
    spec = {
        "models": models,
        "singles": [rest_event("/predict", body) for body in single_bodies],
        "batch": rest_event("/predict/batch", {"items": batch_items}),
        "check": [
            *[rest_event("/predict", item) for item in check_items],
            rest_event("/predict/batch", {"items": check_items, "request_id": "check"}),
        ],
    }
    sides: dict[str, Side] = {}
    try:
        for name, tree in (("old", old_tree), ("new", new_tree)):
            sides[name] = Side(name, tree, work, spec)
        one_sided = _agreement(sides["old"].ready, sides["new"].ready)
        blocks: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
        for b in range(plan.blocks):
            for name in ("old", "new") if b % 2 == 0 else ("new", "old"):
                blocks[name].append(sides[name].block(plan))
    finally:
        for side in sides.values():
            side.close()
    result = _summarize(blocks)
    _report(result, plan, against, sha, len(single_bodies), len(batch_items), one_sided)
    return result


def _summarize(blocks: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per variant: each side's median over blocks of the block's p50 and p90 (wall) and p50
    (CPU), and the median and quartiles of the per-block ratios new/old."""
    out: dict[str, Any] = {}
    for key, _, _ in ROWS:
        stats: dict[str, Any] = {}
        per_block: dict[str, dict[str, list[float]]] = {}
        for side, runs in blocks.items():
            per_block[side] = {
                "p50": [percentile(run[key][0], 50) for run in runs],
                "p90": [percentile(run[key][0], 90) for run in runs],
                "cpu50": [percentile(run[key][1], 50) for run in runs],
            }
            stats[side] = {q: median(v) for q, v in per_block[side].items()}
        for q in ("p50", "cpu50"):
            ratios = [n / o for n, o in zip(per_block["new"][q], per_block["old"][q], strict=True)]
            stats[f"ratio_{q}"] = median(ratios)
            stats[f"ratio_{q}_iqr"] = (percentile(ratios, 25), percentile(ratios, 75))
        out[key] = stats
    return out


def _report(
    result: dict[str, Any],
    plan: Plan,
    against: str,
    sha: str,
    n_rows: int,
    n_items: int,
    one_sided: set[str],
) -> None:
    rows = []
    for key, label, unit in ROWS:
        fmt = us if unit == "us" else ms
        stats = result[key]
        low, high = stats["ratio_p50_iqr"]
        rows.append(
            [
                f"{label} ({unit})",
                fmt(stats["old"]["p50"]),
                fmt(stats["new"]["p50"]),
                fmt(stats["old"]["p90"]),
                fmt(stats["new"]["p90"]),
                f"{stats['ratio_p50']:.3f}",
                f"{low:.2f}-{high:.2f}",
                f"{stats['ratio_cpu50']:.3f}",
            ]
        )
    say()
    say(
        table(
            f"9. One prediction pipeline: this tree (new) against {against} ({sha[:10]}, old), "
            f"same run, {plan.blocks} alternating blocks per side (medians over blocks)",
            ["measure", "old p50", "new p50", "old p90", "new p90", "new/old", "IQR", "CPU n/o"],
            rows,
        )
    )
    say(
        f"   per block and side: {plan.single} calls of each single-row variant ({n_rows} "
        f"distinct rows of a 36-feature, 500-tree model cycled), {plan.batch} of each batch\n"
        f"   ({n_items} items, 15 tickers on 11 such models). new/old = median over blocks of "
        "the block's p50 ratio (IQR: its quartiles);\n   CPU n/o the same for this thread's "
        "CPU time. Each tree published the same boosters into its own folder store with its\n"
        "   own code and serves them in its own warm process; both answered and captured the "
        "same 30 rows (alone and\n   as one batch) identically before timing"
        + (f" (fields one tree lacks: {', '.join(sorted(one_sided))})." if one_sided else ".")
    )


def target_rows(result: dict[str, Any] | None) -> list[list[str]]:
    """Issue 16's target: the single-row p50 and the batch no slower than before."""
    if result is None:
        return []
    rows = []
    for key, label, _ in ROWS:
        ratio = result[key]["ratio_p50"]
        rows.append(
            [
                f"no slower than before, p50 ({label.removeprefix('Api.handle, ')})",
                f"{ratio:.3f} of before",
                "yes" if ratio <= NOISE else "NO",
            ]
        )
    return rows
