"""Generated capture records and outcomes in the documented formats (PLAN.md "Capture record"
and "Outcomes"), baselines for published demo models, and a store that holds them all."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from tests.capture_support import ListSink
from tickerserve.baselines.baseline import Baseline, Reference, Window, fit_baseline
from tickerserve.baselines.persistence import StoredBaseline, attach_to_bundle, load_baseline
from tickerserve.layout import MONITORING_HISTORY_KEY
from tickerserve.publishing.demo import demo_bundle
from tickerserve.publishing.release import publish_bundle
from tickerserve.serving.capture import Capture
from tickerserve.serving.model import LoadedModel
from tickerserve.serving.predict import predict
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.bundle import Bundle, read_metadata
from tickerserve.storage.history import append_records
from tickerserve.storage.registry import update_registry
from tickerserve.storage.store import LocalStore, Store

REGISTRY_KEY = "metadata/asset_registry.json"
DAY0 = date(2026, 12, 1)


def reference_rows(rng: np.random.Generator, n: int, n_features: int) -> np.ndarray:
    """Reference features like the demo models' training data (standard normal, 2% gaps)."""
    x = rng.normal(size=(n, n_features))
    x[rng.random(x.shape) < 0.02] = np.nan
    return x


def classification_baseline(bundle: Bundle, x: np.ndarray, truth: Sequence[str] | None) -> Baseline:
    """The baseline ``publish --reference`` fits: the model's own outputs on ``x``."""
    meta = bundle.metadata
    loaded = LoadedModel(meta, bundle.files)
    return fit_baseline(
        meta.model,
        meta.version,
        "classification",
        Reference(meta.used_features, x, loaded.predict_proba(x), truth),
        classes=meta.classes,
        training=Window("2020-01-02", "2025-06-30", 400),
        validation=Window("2025-07-01", "2025-12-31"),
    )


def publish_with_baseline(
    store: Store, bundle: Bundle, baseline: Baseline, *, aliases: tuple[str, ...] = ("production",)
) -> None:
    publish_bundle(
        store, attach_to_bundle(bundle, baseline), registry_key=REGISTRY_KEY, aliases=aliases
    )


def set_shadow(store: Store, model: str, alias: str, mode: str = "shadow") -> None:
    """The registry's shadow/canary setting (schema 2's per-model field), written raw."""
    blob = store.get(REGISTRY_KEY)
    assert blob is not None
    raw = json.loads(blob.data)
    raw["models"][model][mode] = {"alias": alias, "sample": 1.0}
    store.put(REGISTRY_KEY, json.dumps(raw).encode(), if_match=blob.etag)


def stamp(day: date, second: int) -> str:
    moment = datetime(day.year, day.month, day.day) + timedelta(seconds=second % 86400)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


@dataclass
class Row:
    """One scored row as the capture writer records it."""

    request_id: str
    time: str
    model: str
    version: str
    alias: str
    role: str
    task: str
    features: dict[str, float | None]
    output: dict[str, Any]
    challengers: list[dict[str, Any]]

    def record(self) -> dict[str, Any]:
        return {
            "kind": "capture",
            "v": 1,
            "time": self.time,
            "request_id": self.request_id,
            "source": "api",
            "ticker": "SMH",
            "timeframe": None,
            "model": self.model,
            "version": self.version,
            "alias": self.alias,
            "role": self.role,
            "task": self.task,
            "features": self.features,
            "output": self.output,
            "challengers": self.challengers,
            "latency_us": 120,
        }


def feature_dict(names: Sequence[str], values: np.ndarray) -> dict[str, float | None]:
    return {
        n: None if np.isnan(v) else round(float(v), 6) for n, v in zip(names, values, strict=True)
    }


def class_output(label: str, classes: Sequence[str], confidence: float = 0.7) -> dict[str, Any]:
    rest = (1 - confidence) / (len(classes) - 1)
    return {
        "label": label,
        "probabilities": {c: confidence if c == label else rest for c in classes},
    }


def write_capture(
    store: Store, records: Iterable[dict[str, Any]], *, gz: bool = True, parts: int = 1
) -> None:
    """Records into ``capture/dt=YYYY-MM-DD/`` by their own time, gzip JSON lines."""
    by_day: dict[str, list[bytes]] = defaultdict(list)
    for r in records:
        by_day[r["time"][:10]].append(json.dumps(r).encode())
    for day, lines in by_day.items():
        for part in range(parts):
            chunk = lines[part::parts]
            data = b"\n".join(chunk) + b"\n"
            suffix = "jsonl.gz" if gz else "jsonl"
            key = f"capture/dt={day}/part-{part:04d}.{suffix}"
            store.put(key, gzip.compress(data) if gz else data)


def write_outcomes(store: Store, outcomes: Iterable[dict[str, Any]], received: date) -> None:
    lines = [json.dumps({**o, "received_at": stamp(received, 3600)}).encode() for o in outcomes]
    if lines:
        store.put(
            f"outcomes/dt={received.isoformat()}/batch-{len(lines)}.jsonl",
            b"\n".join(lines) + b"\n",
        )


def alias_version(store: Store, model: str, alias: str, version: str, digest: str) -> None:
    update_registry(store, REGISTRY_KEY, lambda r: r.set_alias(model, alias, version, digest))


def stored_baseline(root: Path, model: str, version: str) -> StoredBaseline:
    """The verified baseline of a version in the folder store at ``root`` (it must have one)."""
    local = LocalStore(root)
    found = load_baseline(local, read_metadata(local, model, version)[0])
    assert found is not None, f"{model} {version} has no baseline"
    return found


# A three-class strategy model's labels.
CLASSES = ["IRON_CONDOR", "BULL_PUT_SPREAD", "BEAR_CALL_SPREAD"]


def calibrated_rows(
    rng: np.random.Generator,
    n: int,
    *,
    scale: float = 1.5,
    sharpen: float = 1.0,
    classes: Sequence[str] = CLASSES,
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from them (a calibrated model); ``sharpen`` > 1 makes
    the reported probabilities overconfident while the labels still follow the true ones."""
    logits = rng.normal(scale=scale, size=(n, len(classes)))
    true_p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    truth = np.array([rng.choice(len(classes), p=p) for p in true_p])
    shown = np.exp(sharpen * logits)
    return shown / shown.sum(axis=1, keepdims=True), truth


def past_wins(
    store: Store,
    model: str = "etfs/SMH",
    *,
    before: date,
    days: int = 2,
    champion: str = "1.0.0",
    challenger: str = "1.0.1",
    win_rate: float = 1.0,
    drift_pct: float = 0.0,
) -> None:
    """History lines of ``days`` earlier daily runs (the days just before ``before``) in which
    the challenger won: seed 003 switches only after three winning days in a row."""
    lines = [
        {
            "kind": "monitoring",
            "model": model,
            "timestamp": f"{(before - timedelta(days=k)).isoformat()}T06:00:00.000000Z",
            "monitoring_date": (before - timedelta(days=k)).isoformat(),
            "champion": {"alias": "production", "version": champion},
            "challenger": {"alias": "challenger", "version": challenger},
            "comparison": {"model_b_win_rate": win_rate, "windows_counted": 7},
            "drift": {"drift_pct": drift_pct, "model_a_drift_pct": max(0.0, drift_pct)},
        }
        for k in range(days, 0, -1)
    ]
    append_records(store, MONITORING_HISTORY_KEY, lines)


def serve_spy_on_two_signals(store: LocalStore, spy: Bundle, cache: Path) -> None:
    """SPY's ``spy`` model on its default signal (strategy) and a second model,
    ``etfs/SPY/direction``, on its direction signal; 50 requests served with capture on (20
    naming direction) plus 5 strategy rows captured before signals existed (no ``signal``
    key), all on DAY0."""
    publish_bundle(store, spy, registry_key=REGISTRY_KEY, routes={"SPY": "etf"})
    publish_bundle(store, demo_bundle("etfs/SPY/direction", seed=6, rounds=5),
                   registry_key=REGISTRY_KEY)  # fmt: skip
    update_registry(
        store,
        REGISTRY_KEY,
        lambda r: r.set_route("SPY", "etfs/SPY/direction", "etf", signal="direction"),
    )
    service = ModelService(Settings(cache_dir=str(cache)), store=store)
    sink = ListSink()
    features = dict.fromkeys(spy.metadata.feature_names, 0.3)
    for i in range(50):
        body: dict[str, Any] = {"ticker": "SPY", "features": features, "request_id": f"r{i}"}
        if i % 5 < 2:
            body["signal"] = "direction"
        predict(service, body, capture=Capture(sink))
    records = [{**r, "time": stamp(DAY0, i)} for i, r in enumerate(sink.records)]
    old = [r for r in records if r["model"] == spy.metadata.model][:5]
    records += [
        {**{k: v for k, v in r.items() if k != "signal"}, "request_id": f"old-{i}"}
        for i, r in enumerate(old)
    ]
    write_capture(store, records)
