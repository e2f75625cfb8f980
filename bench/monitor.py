"""Section 5: a monitor run over 250,000 captured rows (36 features, 10 models, shadow
challengers) with their outcomes, in a fresh process pinned to one core.

The store is a local folder with the bucket's layout (gzip JSON-lines capture objects under
``capture/dt=.../``, outcomes under ``outcomes/dt=.../``), generated once and cached under
``build/bench-cache/``. The baseline in the same run: parsing the same lines with the standard
``json`` module alone, the floor of any monitor written the obvious way.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import ROOT, median, mib, say, table

ROWS = 250_000
FEATURES = 36
MODELS = 10
DAYS = 7
PARTS_PER_DAY = 4
SINCE = date(2026, 11, 2)
CACHE = ROOT / "build" / "bench-cache" / f"monitor-{ROWS}-{FEATURES}-{MODELS}-v2"
TARGET_SECONDS = 20.0
TARGET_RSS = 512 * 1024 * 1024


def _stamp(day: date, second: int) -> str:
    return (
        f"{day.isoformat()}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}.000000Z"
    )


def build_store(root: Path) -> None:
    """Ten published 36-feature models with baselines and challengers, then the traffic."""
    from tickerserve.baselines.baseline import Reference, Window, fit_baseline
    from tickerserve.baselines.persistence import attach_to_bundle
    from tickerserve.layout import (
        CAPTURE_KIND,
        CAPTURE_VERSION,
        DEFAULT_REGISTRY_KEY,
        OUTCOMES_PREFIX,
        capture_key,
        partition_prefix,
    )
    from tickerserve.publishing.demo import demo_bundle
    from tickerserve.publishing.release import publish_bundle
    from tickerserve.serving.model import LoadedModel
    from tickerserve.storage.store import LocalStore

    store = LocalStore(root)
    rng = np.random.default_rng(0)
    names: list[str] = []
    classes: list[str] = []
    for m in range(MODELS):
        model = f"etfs/B{m:02d}"
        for version, seed, aliases in (
            ("1.0.0", m, ("production",)),
            ("1.0.1", 100 + m, ("challenger",)),
        ):
            bundle = demo_bundle(
                model, version, seed=seed, n_features=FEATURES, rows=600, rounds=10
            )
            meta = bundle.metadata
            names, classes = meta.used_features, meta.classes
            x = rng.normal(size=(3000, FEATURES))
            proba = LoadedModel(meta, bundle.files).predict_proba(x)
            truth = [classes[i] for i in rng.integers(0, len(classes), 3000)]
            reference = Reference(names, x, proba, truth)
            baseline = fit_baseline(
                model, version, "classification", reference, classes=classes,
                training=Window("2020-01-02", "2025-06-30"),
            )  # fmt: skip
            bundle = attach_to_bundle(bundle, baseline)
            publish_bundle(store, bundle, registry_key=DEFAULT_REGISTRY_KEY, aliases=aliases)
    per_day = -(-ROWS // DAYS)
    outcomes: list[bytes] = []
    for d in range(DAYS):
        day = SINCE + timedelta(days=d)
        n = min(per_day, ROWS - d * per_day)  # the last day is short: exactly ROWS in all
        x = rng.normal(size=(n, FEATURES))
        if d >= 3:
            x[:, :6] += 1.5  # six inputs move half-way through the week
        x = np.round(x, 4)
        truths = rng.integers(0, len(classes), size=n)
        # the champion is right 55% of the time, the challenger 60%
        right = rng.random(size=(n, 2)) < (0.55, 0.60)
        lines: list[bytes] = []
        for i in range(n):
            model = f"etfs/B{i % MODELS:02d}"
            rid = f"{d}-{i}"
            truth = classes[truths[i]]
            wrong = classes[(truths[i] + 1) % len(classes)]
            a, b = (truth if ok else wrong for ok in right[i])
            p = dict.fromkeys(classes, 1 / len(classes))
            record = {
                "kind": CAPTURE_KIND, "v": CAPTURE_VERSION, "time": _stamp(day, i * 86400 // n),
                "request_id": rid, "source": "api", "ticker": model[5:], "timeframe": None,
                "model": model, "version": "1.0.0", "alias": "production", "role": "champion",
                "task": "classification",
                "features": dict(zip(names, x[i].tolist(), strict=True)),
                "output": {"label": a, "probabilities": p},
                "challengers": [{"alias": "challenger", "version": "1.0.1",
                                 "output": {"label": b, "probabilities": p}, "latency_us": 40}],
                "latency_us": 120,
            }  # fmt: skip
            lines.append(json.dumps(record, separators=(",", ":")).encode())
            outcomes.append(json.dumps({"request_id": rid, "label": truth,
                                        "received_at": _stamp(day, 86399)}).encode())  # fmt: skip
        for part in range(PARTS_PER_DAY):
            key = capture_key(day.isoformat(), f"part-{part:04d}.jsonl.gz")
            store.put(key, gzip.compress(b"\n".join(lines[part::PARTS_PER_DAY]) + b"\n", 6))
    received = SINCE + timedelta(days=DAYS)
    for part in range(PARTS_PER_DAY):
        store.put(f"{partition_prefix(OUTCOMES_PREFIX, received.isoformat())}part-{part}.jsonl",
                  b"\n".join(outcomes[part::PARTS_PER_DAY]) + b"\n")  # fmt: skip


def ensure_store(rebuild: bool = False) -> Path:
    root = CACHE / "store"
    if rebuild or not (CACHE / "done").exists():
        shutil.rmtree(CACHE, ignore_errors=True)
        root.mkdir(parents=True)
        started = time.monotonic()
        say(f"   generating {ROWS:,} capture rows x {FEATURES} features for {MODELS} models ...")
        build_store(root)
        (CACHE / "done").write_text("ok")
        say(f"   generated in {time.monotonic() - started:.0f} s")
    return root


def _child(mode: str, root: Path) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "bench.monitor_child", mode, str(root)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run(samples: int, rebuild: bool = False) -> dict[str, Any]:
    root = ensure_store(rebuild)
    runs: dict[str, list[dict[str, Any]]] = {"json": [], "monitor": []}
    for _ in range(samples):
        for mode in runs:  # alternating, one fresh process each
            runs[mode].append(_child(mode, root))
    mon, base = runs["monitor"], runs["json"]
    seconds = median([r["seconds"] for r in mon])
    rss = median([r["peak_rss"] for r in mon])
    json_seconds = median([r["seconds"] for r in base])
    rows = mon[-1]["rows"]
    say()
    say(
        table(
            f"5. Monitor run: {rows:,} captured rows x {FEATURES} features, {MODELS} models "
            f"with shadow challengers, {mon[-1]['outcomes']:,} outcomes, one core "
            f"(median of {samples}, fresh process each)",
            ["side", "seconds", "rows/s", "peak RSS MiB", "history lines", "actions"],
            [
                [
                    "json.loads of the same lines only",
                    f"{json_seconds:.2f}",
                    f"{rows / json_seconds:,.0f}",
                    mib(median([r["peak_rss"] for r in base])),
                    "-",
                    "-",
                ],
                [
                    "tickerserve monitor run (parse, drift, performance, tests, history)",
                    f"{seconds:.2f}",
                    f"{rows / seconds:,.0f}",
                    mib(rss),
                    str(mon[-1]["history"]),
                    mon[-1]["actions"],
                ],
            ],
        )
    )
    say(f"   monitor run / json-only parse: {seconds / json_seconds:.2f}x the time; "
        f"parser: {mon[-1]['parser']}")  # fmt: skip
    return {"seconds": seconds, "peak_rss": rss, "json_seconds": json_seconds, "rows": rows}


def target_rows(result: dict[str, Any]) -> list[list[str]]:
    seconds, rss = result["seconds"], result["peak_rss"]
    return [
        ["monitor run (250k rows, 10 models) <= 20 s, one core", f"{seconds:.1f} s",
         "yes" if seconds <= TARGET_SECONDS else "NO"],
        ["monitor run peak RSS <= 512 MiB", f"{mib(rss)} MiB",
         "yes" if rss <= TARGET_RSS else "NO"],
    ]  # fmt: skip
