"""Regenerate docs/monitoring-report.png (the README's picture of ``tickerserve monitor
report``): eight weekly monitor runs over generated traffic for three models, then the report.

    .venv/bin/python docs/monitoring_picture.py
"""

from __future__ import annotations

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
from tickerserve.monitor.evaluate import Period, run_monitor  # noqa: E402
from tickerserve.monitor.monitoring_history import append_run  # noqa: E402
from tickerserve.publishing.demo import demo_bundle  # noqa: E402
from tickerserve.storage.history import read_records  # noqa: E402
from tickerserve.storage.store import LocalStore  # noqa: E402

START = date(2026, 9, 7)
WEEKS = 8
PER_DAY = 120
# model -> (shift of its first two inputs in week k, champion right, challenger right in week k)
STORY = {
    "etfs/SMH": lambda k: (0.0, 0.62, 0.60),  # stable: keep
    "etfs/SPY": lambda k: (0.25 * k, 0.62 - 0.02 * k, 0.60),  # inputs move, accuracy erodes
    "etfs/QQQ": lambda k: (0.0, 0.58, 0.55 + 0.04 * k),  # the challenger pulls ahead
}


def main() -> None:
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
    for k in range(WEEKS):
        since = START + timedelta(days=7 * k)
        records, outcomes = [], []
        for model, story in STORY.items():
            shift, right_a, right_b = story(k)
            for d in range(7):
                day = since + timedelta(days=d)
                x = reference_rows(rng, PER_DAY, len(names))
                x[:, :2] += shift
                for j in range(PER_DAY):
                    truth = classes[rng.integers(len(classes))]
                    wrong = classes[(classes.index(truth) + 1) % len(classes)]
                    a = truth if rng.random() < right_a else wrong
                    b = truth if rng.random() < right_b else wrong
                    rid = f"{model}-{k}-{d}-{j}"
                    shadow = [{"alias": "challenger", "version": "1.0.1",
                               "output": class_output(b, classes)}]  # fmt: skip
                    records.append(Row(rid, stamp(day, j * 700), model, "1.0.0", "production",
                                       "champion", "classification", feature_dict(names, x[j]),
                                       class_output(a, classes), shadow).record())  # fmt: skip
                    outcomes.append({"request_id": rid, "label": truth})
        write_capture(store, records)
        write_outcomes(store, outcomes, since + timedelta(days=7))
        until = since + timedelta(days=7)
        report = run_monitor(store, registry_key=REGISTRY_KEY, period=Period(since, until),
                             now=datetime(until.year, until.month, until.day, 0, 30))  # fmt: skip
        append_run(store, report)
    history = read_records(store, MONITORING_HISTORY_KEY).records
    out = ROOT / "docs" / "monitoring-report.png"
    render(history, png=out, source="a generated example store")
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB) from {len(history)} history lines")


if __name__ == "__main__":
    main()
