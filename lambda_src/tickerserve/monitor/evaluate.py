"""One monitor run (NannyML's ``calculate``): capture and outcomes of a date range against
each model's baseline, in daily windows, folded in one streaming pass.

``run_monitor`` returns one ``ModelReport`` per model: feature and output drift, performance
against the baseline's metrics, champion vs challenger per window with a significance test,
and seed 003's recommendation. Writing history, emitting metrics and promoting are separate
steps (``tickerserve.monitor.monitoring_history``, ``.cloudwatch``, ``.promotion``).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from tickerserve.baselines.baseline import Baseline, BaselineError, ClassShares, Histogram
from tickerserve.baselines.metrics import (
    ClassificationTally,
    RegressionTally,
    Tally,
    better,
    drift_pct,
    new_tally,
    primary_metric,
)
from tickerserve.baselines.moments import Moments
from tickerserve.baselines.persistence import StoredBaseline, load_baseline
from tickerserve.errors import TickerserveError
from tickerserve.layout import validate_model_name
from tickerserve.monitor import capture_reader
from tickerserve.monitor.drift_statistics import (
    DEFAULT_PSI,
    PSI_EPSILON,
    Threshold,
    linf_at_points,
    psi,
)
from tickerserve.monitor.model_stream import (
    CANARY,
    SHADOW,
    ModelStream,
    Subject,
    class_shares_expected,
)
from tickerserve.monitor.outcome_join import DEFAULT_CAPACITY, OutcomeIndex, latest_outcomes
from tickerserve.monitor.recommendation import Evidence, Rule, recommend, seed_sentence
from tickerserve.monitor.significance import (
    Significance,
    diebold_mariano_hln,
    mcnemar_exact,
    two_proportion_z,
    welch_t,
)
from tickerserve.storage.bundle import BundleMetadata, read_metadata
from tickerserve.storage.registry import DEFAULT_ALIAS, read_registry
from tickerserve.storage.store import KeyNotFound, Store

logger = logging.getLogger(__name__)

DEFAULT_DAYS = 7
SEED_TEST_SIZE = 30  # seed 003 tests on its last 30 samples: a smaller window proves nothing
# Numbers the streams may hold as pending columns before they are folded into the tallies:
# about 32 MiB (8 bytes a number at most) whatever the traffic or the number of models, and
# enough rows per fold (about 85,000 at 36 features) that numpy's per-call cost vanishes.
FOLD_CELLS = 4_000_000


@dataclass(frozen=True)
class MonitorConfig:
    """Thresholds and sizes of a run (all configurable; the defaults follow seed 003)."""

    psi: Threshold = DEFAULT_PSI
    rule: Rule = field(default_factory=Rule)
    min_window: int = SEED_TEST_SIZE  # scored outcomes for a window to count
    min_drift_rows: int = 200  # rows before a PSI is judged (10 bins need a few per bin)
    agreement_tolerance: float = 0.1  # regression: answers within 10% agree
    psi_epsilon: float = PSI_EPSILON
    champion_alias: str = DEFAULT_ALIAS
    outcome_capacity: int = DEFAULT_CAPACITY

    def __post_init__(self) -> None:
        if self.min_window < 1 or self.min_drift_rows < 1:
            raise ValueError("window minimums must be >= 1")
        if not 0 < self.psi_epsilon < 0.01:
            raise ValueError("psi epsilon must be in (0, 0.01)")

    def to_dict(self) -> dict[str, Any]:
        return {
            "psi": self.psi.to_dict(),
            "rule": self.rule.to_dict(),
            "min_window": self.min_window,
            "min_drift_rows": self.min_drift_rows,
            "agreement_tolerance": self.agreement_tolerance,
            "psi_epsilon": self.psi_epsilon,
            "champion_alias": self.champion_alias,
        }


@dataclass(frozen=True)
class Period:
    """``[since, until)`` in whole UTC days."""

    since: date
    until: date

    def __post_init__(self) -> None:
        if self.until <= self.since:
            raise ValueError(f"--until {self.until} must be after --since {self.since}")
        if (self.until - self.since).days > 92:
            raise ValueError("a run covers at most 92 days")

    @classmethod
    def ending(cls, until: date, days: int = DEFAULT_DAYS) -> Period:
        return cls(until - timedelta(days=days), until)

    @property
    def days(self) -> list[str]:
        return [d.isoformat() for d in capture_reader.days(self.since, self.until)]


@dataclass
class ModelReport:
    """Everything a run found for one model (JSON-ready through ``to_dict``)."""

    subject: Subject
    data: dict[str, Any]

    @property
    def model(self) -> str:
        return self.subject.model

    @property
    def action(self) -> str:
        return str(self.data["recommendation"]["action"])

    def to_dict(self) -> dict[str, Any]:
        return self.data


@dataclass
class RunReport:
    run_id: str
    started_at: str
    period: Period
    config: MonitorConfig
    models: list[ModelReport]
    capture: dict[str, int]
    outcomes: dict[str, Any]
    skipped_models: dict[str, str]
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "since": self.period.since.isoformat(),
            "until": self.period.until.isoformat(),
            "config": self.config.to_dict(),
            "capture": self.capture,
            "outcomes": self.outcomes,
            "skipped_models": self.skipped_models,
            "models": [m.to_dict() for m in self.models],
            "seconds": round(self.seconds, 3),
        }


def utc_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- who is judged ---------------------------------------------------------------------------
def _raw_registry(store: Store, key: str) -> dict[str, Any]:
    try:
        blob = store.get(key)
    except KeyNotFound:
        return {}
    assert blob is not None
    raw = json.loads(blob.data)
    return raw if isinstance(raw, dict) else {}


def _configured_challenger(raw_entry: Any) -> str | None:
    """The alias a model's shadow (preferred: same rows) or canary names in the registry."""
    if not isinstance(raw_entry, dict):
        return None
    for mode in (SHADOW, CANARY):
        setting = raw_entry.get(mode)
        if isinstance(setting, dict) and isinstance(setting.get("alias"), str):
            return str(setting["alias"])
    return None


def task_of(metadata: BundleMetadata, baseline: Baseline | None = None) -> str:
    """The version's task: its metadata's, else its baseline's, else classification (the
    only task before metadata carried one)."""
    for task in (getattr(metadata, "task", None), baseline.task if baseline else None):
        if task in ("classification", "regression"):
            return str(task)
    return "classification"


@dataclass(frozen=True)
class Candidate:
    """A model to judge, its baseline as stored (None: none yet) and any baseline problem."""

    subject: Subject
    baseline: StoredBaseline | None
    baseline_problem: str | None = None


def load_candidates(
    store: Store, registry_key: str, config: MonitorConfig, models: list[str] | None = None
) -> tuple[list[Candidate], dict[str, str]]:
    """The models to judge (those whose champion alias exists) and why others were skipped."""
    registry = read_registry(store, registry_key).registry
    raw_models = _raw_registry(store, registry_key).get("models") or {}
    wanted = [validate_model_name(m) for m in models] if models else sorted(registry.models)
    candidates: list[Candidate] = []
    skipped: dict[str, str] = {}
    for name in wanted:
        entry = registry.models.get(name)
        target = entry.aliases.get(config.champion_alias) if entry else None
        if entry is None or target is None:
            skipped[name] = f"no {config.champion_alias} alias"
            continue
        try:
            metadata, _ = read_metadata(
                store, name, target.version, expected_sha256=target.metadata_sha256
            )
        except TickerserveError as exc:
            skipped[name] = f"{target.version}: {exc.message}"
            continue
        stored: StoredBaseline | None = None
        problem = None
        try:
            stored = load_baseline(store, metadata)
        except (TickerserveError, BaselineError) as exc:
            problem = exc.message if isinstance(exc, TickerserveError) else str(exc)
            logger.warning("%s %s: baseline unusable: %s", name, target.version, problem)
        task = task_of(metadata, stored.baseline if stored else None)
        subject = Subject(
            model=name,
            task=task,  # type: ignore[arg-type]
            champion_alias=config.champion_alias,
            champion_version=target.version,
            classes=list(metadata.classes) if task == "classification" else [],
            feature_names=list(metadata.used_features),
            baseline=stored.baseline if stored else None,
            challenger_alias=_configured_challenger(raw_models.get(name)),
            aliases={a: t.version for a, t in entry.aliases.items()},
        )
        candidates.append(Candidate(subject, stored, problem))
    return candidates, skipped


# -- the run -------------------------------------------------------------------------------
def run_monitor(
    store: Store,
    *,
    registry_key: str,
    period: Period,
    config: MonitorConfig | None = None,
    models: list[str] | None = None,
    capture_store: Store | None = None,
    now: datetime | None = None,
) -> RunReport:
    """Judge every model (or ``models``) on ``period``'s capture and outcomes.

    Outcomes are read from ``since`` up to ``now`` (they arrive after the predictions);
    capture from ``capture_store`` (default: ``store``), the capture bucket when deployed.
    """
    config = config or MonitorConfig()
    clock = time.perf_counter()
    now = now or datetime.now(UTC)  # the run's timestamp (a schedule passes its own)
    candidates, skipped = load_candidates(store, registry_key, config, models)
    outcome_counts = capture_reader.ReadCounts()
    # Outcomes arrive after the predictions: read every day received since the period began,
    # through the day the period ends on and today.
    outcome_until = max(period.until, now.date()) + timedelta(days=1)
    with capture_reader.no_cycle_collection():
        index = OutcomeIndex.build(
            latest_outcomes(store, period.since, outcome_until, outcome_counts),
            capacity=config.outcome_capacity,
        )
    streams = {
        c.subject.model: ModelStream(
            c.subject, period.days, index, agreement_tolerance=config.agreement_tolerance
        )
        for c in candidates
    }
    counts = capture_reader.ReadCounts()
    outside = 0
    unmonitored: dict[str, int] = defaultdict(int)
    batches = capture_reader.read_records(
        capture_store or store, period.since, period.until, counts
    )
    with capture_reader.no_cycle_collection():
        for batch in batches:
            by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for record in batch:
                by_model[record["model"]].append(record)
            for name, records in by_model.items():
                stream = streams.get(name)
                if stream is None:
                    unmonitored[name] += len(records)
                else:
                    outside += stream.add(records)
            if sum(s.pending_cells for s in streams.values()) >= FOLD_CELLS:
                _fold(streams.values())
        _fold(streams.values())
    reports = [
        ModelReport(c.subject, _judge(c, streams[c.subject.model], config, store, period))
        for c in candidates
    ]
    capture_figures = {**counts.to_dict(), "outside_period": outside}
    if unmonitored:
        capture_figures["unmonitored_rows"] = sum(unmonitored.values())
    return RunReport(
        run_id=uuid.uuid4().hex[:12],
        started_at=utc_stamp(now),
        period=period,
        config=config,
        models=reports,
        capture=capture_figures,
        outcomes={
            **outcome_counts.to_dict(),
            "request_ids": len(index),
            "sample_rate": index.sample_rate,
        },
        skipped_models=skipped,
        seconds=time.perf_counter() - clock,
    )


def _fold(streams: Iterable[ModelStream]) -> None:
    for stream in streams:
        stream.fold()


# -- judging one model ---------------------------------------------------------------------
def _judge(
    candidate: Candidate, stream: ModelStream, config: MonitorConfig, store: Store, period: Period
) -> dict[str, Any]:
    subject = candidate.subject
    baseline = subject.baseline
    metric = primary_metric(subject.task)
    features = _feature_drift(stream, baseline, config)
    output = _output_drift(stream, baseline, config)
    performance = _performance(stream, baseline, metric, config)
    comparison = _comparison(stream, metric, config)
    windows = _windows(stream, baseline, metric, comparison["mode"], config)
    counted = [w for w in windows if w["winner"] is not None]
    wins = sum(w["winner"] == "Model B" for w in counted)
    comparison["windows_counted"] = len(counted)
    comparison["win_rate"] = wins / len(counted) if counted else None
    test = comparison.pop("_test")
    inputs_drifted = bool(features and features["drifted"]) or (
        output is not None and output["level"] == "drift"
    )
    decision = recommend(
        Evidence(performance["drift_pct"], comparison["win_rate"], test, inputs_drifted),
        config.rule,
    )
    challenger = None
    if stream.challenger_alias is not None and stream.challenger_version is not None:
        challenger = {
            "alias": stream.challenger_alias,
            "version": stream.challenger_version,
            "mode": comparison["mode"],
            "baseline": _challenger_windows(store, subject, stream.challenger_version),
        }
    champion_ref = f"{subject.champion_alias} {subject.champion_version}"
    challenger_ref = f"{challenger['alias']} {challenger['version']}" if challenger else None
    return {
        "model": subject.model,
        "task": subject.task,
        "champion": {
            "alias": subject.champion_alias,
            "version": subject.champion_version,
            "baseline": _baseline_summary(candidate),
        },
        "challenger": challenger,
        "rows": int(stream.rows.sum()),
        "rows_other_versions": stream.other_versions,
        "feature_drift": features,
        "output_drift": output,
        "performance": performance,
        "comparison": comparison,
        "test": None if test is None else test.to_dict(),
        "windows": windows,
        "recommendation": {
            "action": decision.action,
            "reason": decision.reason,
            "sentence": seed_sentence(decision.action, champion_ref, challenger_ref),
        },
    }


def _baseline_summary(candidate: Candidate) -> dict[str, Any] | None:
    stored = candidate.baseline
    if stored is None:
        return {"found": False, "problem": candidate.baseline_problem}
    b = stored.baseline
    return {
        "found": True,
        "where": stored.where,
        "sha256": stored.sha256,
        "rows": b.rows,
        "metrics": b.metrics,
        "training": b.training.to_dict(),
        "validation": b.validation.to_dict(),
    }


def _challenger_windows(store: Store, subject: Subject, version: str) -> dict[str, Any] | None:
    """The challenger's training window, for the seed's ``model_b`` block."""
    try:
        metadata, _ = read_metadata(store, subject.model, version)
        stored = load_baseline(store, metadata)
    except (TickerserveError, BaselineError):
        return None
    if stored is None:
        return None
    return {"training": stored.baseline.training.to_dict(), "metrics": stored.baseline.metrics}


def _feature_psi(
    counts: np.ndarray, hist: Histogram, at_points: np.ndarray, config: MonitorConfig
) -> dict[str, Any]:
    rows = int(counts.sum())
    figure: dict[str, Any] = {"rows": rows, "psi": None, "linf": None, "level": None}
    if rows == 0:
        return figure
    figure["missing_share"] = float(counts[-1] / rows)
    if rows < config.min_drift_rows:
        figure["too_few_rows"] = True
        return figure
    value = psi(hist.expected(), counts / rows, config.psi_epsilon)
    present = rows - int(counts[-1])
    figure["psi"] = value
    figure["level"] = config.psi.level(value)
    if present and hist.cdf_points:
        at_or_below = np.cumsum(at_points)[:-1]
        figure["linf"] = linf_at_points(np.asarray(hist.cdf), at_or_below, present)
    return figure


def _feature_drift(
    stream: ModelStream, baseline: Baseline | None, config: MonitorConfig
) -> dict[str, Any] | None:
    if baseline is None or not stream.features:
        return None
    per_feature = {
        name: _feature_psi(
            fc.bins.sum(axis=0), baseline.features[name], fc.at_points.sum(axis=0), config
        )
        for name, fc in stream.features.items()
    }
    return _drift_summary(per_feature, config) | {"features": per_feature}


def _drift_summary(per_feature: dict[str, dict[str, Any]], config: MonitorConfig) -> dict[str, Any]:
    judged = {n: f for n, f in per_feature.items() if f["psi"] is not None}
    drifted = sorted(n for n, f in judged.items() if f["level"] == "drift")
    return {
        "statistic": "psi",
        "epsilon": config.psi_epsilon,
        "thresholds": config.psi.to_dict(),
        "cdf_distance": "L-infinity at the baseline's CDF points",
        "judged": len(judged),
        "psi_max": max((f["psi"] for f in judged.values()), default=None),
        "drifted_share": len(drifted) / len(judged) if judged else None,
        "drifted": drifted,
        "watch": sorted(n for n, f in judged.items() if f["level"] == "watch"),
    }


def _output_drift(
    stream: ModelStream, baseline: Baseline | None, config: MonitorConfig, window: int | None = None
) -> dict[str, Any] | None:
    if baseline is None or baseline.output is None:
        return None
    counts = stream.output_counts.sum(axis=0) if window is None else stream.output_counts[window]
    rows = int(counts.sum())
    if isinstance(baseline.output, ClassShares):
        expected = class_shares_expected(baseline.output, stream.classes)
        kind = "classes"
    else:
        expected = baseline.output.expected()
        kind = "values"
    figure: dict[str, Any] = {"statistic": "psi", "kind": kind, "rows": rows, "psi": None,
                              "level": None}  # fmt: skip
    if rows >= config.min_drift_rows:
        figure["psi"] = psi(expected, counts / rows, config.psi_epsilon)
        figure["level"] = config.psi.level(figure["psi"])
    elif rows:
        figure["too_few_rows"] = True
    return figure


def _merged(tallies: list[Tally], task: str, n_classes: int) -> Tally:
    total = new_tally(task, n_classes)  # type: ignore[arg-type]
    for t in tallies:
        total.merge(t)  # type: ignore[arg-type]
    return total


def _performance(
    stream: ModelStream, baseline: Baseline | None, metric: str, config: MonitorConfig
) -> dict[str, Any]:
    n_classes = len(stream.classes)
    tally = _merged(stream.champion, stream.task, n_classes)
    figures = tally.metrics()
    scored = int(figures.pop("n") or 0)
    sampled = int(stream.sampled_rows.sum())
    base = baseline.metrics.get(metric) if baseline else None
    current = figures.get(metric)
    change = drift_pct(metric, base, current) if scored >= config.min_window else None
    return {
        "metric": metric,
        "baseline": base,
        "current": current,
        "drift_pct": change,
        "model_a_drift_pct": None if change is None else max(0.0, change),
        "metrics": figures,
        "baseline_metrics": dict(baseline.metrics) if baseline else {},
        "scored": scored,
        "rows": int(stream.champion_rows.sum()),
        "coverage": scored / sampled if sampled else None,
        "too_few_outcomes": scored < config.min_window,
    }


def _comparison(stream: ModelStream, metric: str, config: MonitorConfig) -> dict[str, Any]:
    n_classes = len(stream.classes)
    task = stream.task
    paired_scored = sum(p.champion.n for p in stream.pairs)
    canary_scored = sum(t.n for t in stream.canary)
    paired_rows = sum(p.rows for p in stream.pairs)
    mode: str | None = None
    if paired_scored or (paired_rows and not canary_scored):
        mode = SHADOW
    elif canary_scored or stream.canary_rows.sum():
        mode = CANARY
    test: Significance | None = None
    a = b = None
    if mode == SHADOW:
        champion = _merged([p.champion for p in stream.pairs], task, n_classes)
        challenger = _merged([p.challenger for p in stream.pairs], task, n_classes)
        a, b = champion.metrics().get(metric), challenger.metrics().get(metric)
        if paired_scored:
            if task == "classification":
                test = mcnemar_exact(
                    sum(p.champion_only for p in stream.pairs),
                    sum(p.challenger_only for p in stream.pairs),
                )
            else:
                differential = Moments()
                for p in stream.pairs:
                    differential.merge(p.differential)
                test = diebold_mariano_hln(differential)
    elif mode == CANARY:
        champion = _merged(stream.champion, task, n_classes)
        challenger = _merged(stream.canary, task, n_classes)
        a, b = champion.metrics().get(metric), challenger.metrics().get(metric)
        if champion.n and challenger.n:
            if isinstance(champion, ClassificationTally):
                assert isinstance(challenger, ClassificationTally)
                test = two_proportion_z(
                    champion.correct, champion.n, challenger.correct, challenger.n
                )
            else:
                assert isinstance(champion, RegressionTally)
                assert isinstance(challenger, RegressionTally)
                test = welch_t(champion.squared, challenger.squared)
    winner = None
    if a is not None and b is not None:
        winner = "Model B" if better(metric, b, a) else "Model A"
    agree = sum(p.agree for p in stream.pairs)
    return {
        "mode": mode,
        "metric": metric,
        "champion": a,
        "challenger": b,
        "winner": winner,
        "agreement": agree / paired_rows if paired_rows else None,
        "paired_rows": paired_rows,
        "canary_rows": int(stream.canary_rows.sum()),
        "_test": test,
    }


def _windows(
    stream: ModelStream,
    baseline: Baseline | None,
    metric: str,
    mode: str | None,
    config: MonitorConfig,
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, day in enumerate(stream.windows):
        if mode == SHADOW:
            a_tally: Tally = stream.pairs[i].champion
            b_tally: Tally | None = stream.pairs[i].challenger
        else:
            a_tally = stream.champion[i]
            b_tally = stream.canary[i] if mode == CANARY else None
        n_a = a_tally.n
        n_b = b_tally.n if b_tally is not None else 0
        a = a_tally.metrics().get(metric) if n_a else None
        b = b_tally.metrics().get(metric) if b_tally is not None and n_b else None
        enough = b_tally is not None and min(n_a, n_b) >= config.min_window
        window: dict[str, Any] = {
            "name": day,
            "n_samples": n_a,
            f"model_a_{metric}": a,
            f"model_b_{metric}": b,
            "winner": ("Model B" if better(metric, b, a) else "Model A")
            if enough and a is not None and b is not None
            else None,
            "too_small": b_tally is not None and not enough,
            "rows": int(stream.rows[i]),
        }
        if mode == CANARY:
            window["n_samples_b"] = n_b
        if baseline is not None and stream.features:
            per_feature = {
                name: _feature_psi(fc.bins[i], baseline.features[name], fc.at_points[i], config)
                for name, fc in stream.features.items()
            }
            summary = _drift_summary(per_feature, config)
            window["psi_max"] = summary["psi_max"]
            window["drifted_share"] = summary["drifted_share"]
        output = _output_drift(stream, baseline, config, i)
        if output is not None:
            window["output_psi"] = output["psi"]
        out.append(window)
    return out
