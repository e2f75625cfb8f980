"""Regenerate docs/monitoring-report.png (the README's picture of ``tickerserve monitor
report``): monitor runs over generated traffic for three models, then the report.

    .venv/bin/python docs/monitoring_picture.py                  # the README's: 8 weekly runs
    .venv/bin/python docs/monitoring_picture.py --scenario little --out little.png
    .venv/bin/python docs/monitoring_picture.py --scenario lot --out lot.png --html lot.html

``little`` is one run beside a line imported from seed 003's own history in January (what a new
user sees first); ``lot`` is 60 days of daily runs with the weekends' runs missing and the same
imported line (what a team sees after two months). Each run judges the seven days before it,
as the scheduled monitor does.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.monitor_support import (  # noqa: E402
    REGISTRY_KEY,
    Row,
    class_output,
    classification_baseline,
    feature_dict,
    publish_with_baseline,
    reference_rows,
    set_shadow,
    stamp,
    write_capture,
    write_outcomes,
)
from tickerserve.cli.report import render  # noqa: E402
from tickerserve.layout import MONITORING_HISTORY_KEY  # noqa: E402
from tickerserve.monitor.evaluate import run_monitor  # noqa: E402
from tickerserve.monitor.monitoring_history import append_run  # noqa: E402
from tickerserve.monitor.report import Period  # noqa: E402
from tickerserve.publishing.demo import demo_bundle  # noqa: E402
from tickerserve.storage.history import append_records, read_records  # noqa: E402
from tickerserve.storage.store import LocalStore  # noqa: E402

START = date(2026, 9, 7)
PER_DAY = 120
# model -> (shift of its first two inputs on day d (of span), champion right, challenger right)
STORY = {
    "etfs/SMH": lambda f: (0.0, 0.62, 0.60),  # stable: keep
    "etfs/SPY": lambda f: (1.75 * f, 0.62 - 0.14 * f, 0.60),  # inputs move, accuracy erodes
    "etfs/QQQ": lambda f: (0.0, 0.58, 0.55 + 0.28 * f),  # the challenger pulls ahead
}
# Seed 003's own monitoring_history.jsonl line, as `import-seed` brings it in (no model named).
SEED_LINE = {
    "timestamp": "2026-01-08T22:03:39.666322",
    "monitoring_date": "2026-01-08",
    "model_a": {"training_samples": 3566, "training_date_start": "2010-03-31",
                "training_date_end": "2024-05-31"},
    "model_b": {"training_samples": 3933, "training_date_start": "2010-03-31",
                "training_date_end": "2025-11-17"},
    "test_window": {"n_samples": 30, "date_start": "2025-11-18", "date_end": "2025-12-31"},
    "drift": {"model_a_drift_pct": 0.0},
    "comparison": {"model_a_rmse": 0.005765, "model_b_rmse": 0.005768, "winner": "Model A",
                   "model_b_win_rate": 0.0},
    "recommendation": "USE MODEL A (90%)",
    "windows": [{"name": "All new data (30 samples)", "n_samples": 30, "model_a_rmse": 0.005765,
                 "model_b_rmse": 0.005768, "winner": "Model A"}],
}  # fmt: skip


def run_days(scenario: str) -> list[date]:
    """The days a monitor run happens on."""
    if scenario == "readme":
        return [START + timedelta(days=7 * (k + 1)) for k in range(8)]
    if scenario == "little":
        return [START + timedelta(days=7)]
    days = [START + timedelta(days=7 + d) for d in range(60)]
    return [d for d in days if d.weekday() < 5]  # nobody runs it at the weekend


def build(scenario: str) -> list[dict]:
    store = LocalStore(tempfile.mkdtemp(prefix="tickerserve-picture-"))
    rng = np.random.default_rng(1)
    for i, model in enumerate(STORY):
        v1 = demo_bundle(model, "1.0.0", seed=10 + i, selected_features=[0, 2, 4, 6, 8, 10])
        v2 = demo_bundle(model, "1.0.1", seed=20 + i, selected_features=[0, 2, 4, 6, 8, 10])
        names = v1.metadata.used_features
        x = reference_rows(rng, 2000, len(names))
        baseline = classification_baseline(v1, x, None)
        baseline = baseline.__class__(**{**baseline.__dict__, "metrics": {"accuracy": 0.62}})
        publish_with_baseline(store, v1, baseline)
        publish_with_baseline(
            store, v2, classification_baseline(v2, x, None), aliases=("challenger",)
        )
        set_shadow(store, model, "challenger")
    classes = v1.metadata.classes
    if scenario != "readme":
        append_records(store, MONITORING_HISTORY_KEY, [SEED_LINE])
    runs = run_days(scenario)
    first, last = runs[0] - timedelta(days=7), runs[-1]
    span = max((last - first).days, 1)
    for d in range((last - first).days):
        day = first + timedelta(days=d)
        records, outcomes = [], []
        for model, story in STORY.items():
            shift, right_a, right_b = story(d / span)
            x = reference_rows(rng, PER_DAY, len(names))
            x[:, :2] += shift
            for j in range(PER_DAY):
                truth = classes[rng.integers(len(classes))]
                wrong = classes[(classes.index(truth) + 1) % len(classes)]
                a = truth if rng.random() < right_a else wrong
                b = truth if rng.random() < right_b else wrong
                rid = f"{model}-{d}-{j}"
                shadow = [{"alias": "challenger", "version": "1.0.1",
                           "output": class_output(b, classes)}]  # fmt: skip
                records.append(Row(rid, stamp(day, j * 700), model, "1.0.0", "production",
                                   "champion", "classification", feature_dict(names, x[j]),
                                   class_output(a, classes), shadow).record())  # fmt: skip
                outcomes.append({"request_id": rid, "label": truth})
        write_capture(store, records)
        write_outcomes(store, outcomes, day + timedelta(days=1))
    for until in runs:
        report = run_monitor(
            store,
            registry_key=REGISTRY_KEY,
            period=Period(until - timedelta(days=7), until),
            now=datetime(until.year, until.month, until.day, 0, 30),
        )
        append_run(store, report)
    return read_records(store, MONITORING_HISTORY_KEY).records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=("readme", "little", "lot"), default="readme")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "monitoring-report.png")
    parser.add_argument("--html", type=Path, help="also write the HTML page here")
    args = parser.parse_args()
    history = build(args.scenario)
    page = render(history, png=args.out, source="a generated example store")
    if args.html is not None:
        args.html.write_text(page, encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB) from {len(history)} lines")


if __name__ == "__main__":
    main()
