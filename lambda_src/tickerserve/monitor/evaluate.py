"""One monitor run (NannyML's ``calculate``): capture and outcomes of a date range against
each model's baseline, in daily windows.

The capture is read once, as a stream: what needs no outcome is folded at once, and each
served row keeps its salted request key and predictions (``model_stream``). Then the outcomes
of those keys alone are read (``outcome_join``): outcomes for ids never served cost nothing
and cannot thin what is judged. A request id counts once over the whole run.

``run_monitor`` returns a ``report.RunReport`` with one ``ModelReport`` per model: feature and
output drift, performance against the baseline's metrics, champion vs challenger per window
with a significance test, and seed 003's recommendation. Writing history, emitting metrics
and promoting are separate steps (``tickerserve.monitor.monitoring_history``, ``.cloudwatch``,
``.run``). Thresholds and sizes are a ``config.MonitorConfig``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

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
from tickerserve.contract import DEFAULT_SIGNAL
from tickerserve.errors import TickerserveError
from tickerserve.layout import MONITORING_HISTORY_KEY, validate_model_name
from tickerserve.monitor import capture_reader
from tickerserve.monitor.config import MonitorConfig
from tickerserve.monitor.drift_statistics import linf_at_points, psi
from tickerserve.monitor.model_stream import (
    CANARY,
    SHADOW,
    WARNING_CODES,
    Mode,
    ModelStream,
    Sampler,
    Subject,
    class_shares_expected,
    first_occurrences,
)
from tickerserve.monitor.outcome_join import KeyHasher, OutcomeIndex, latest_outcomes
from tickerserve.monitor.performance_estimate import estimate
from tickerserve.monitor.recommendation import Evidence, recommend, seed_sentence
from tickerserve.monitor.report import (
    MODEL_A,
    MODEL_B,
    CaptureCounts,
    ChallengerRef,
    ChampionRef,
    Comparison,
    Decision,
    DriftSummary,
    Estimated,
    FeatureDrift,
    FeatureFigure,
    FeatureWarnings,
    History,
    Joined,
    ModelReport,
    OutcomeCounts,
    OutputDrift,
    Performance,
    Period,
    RequestWarnings,
    RunReport,
    Signals,
    WindowReport,
    Winner,
    drifted_inputs,
)
from tickerserve.monitor.sampling_salt import load_salt
from tickerserve.monitor.significance import (
    Significance,
    diebold_mariano_hln,
    mcnemar_exact,
    two_proportion_z,
    welch_t,
)
from tickerserve.monitor.streaks import DailyRun, daily_runs, degrading_streak, winning_streak
from tickerserve.storage.bundle import BundleMetadata, read_metadata
from tickerserve.storage.history import read_records
from tickerserve.storage.registry import ModelEntry, Registry, read_registry
from tickerserve.storage.store import Store

logger = logging.getLogger(__name__)

# Numbers the streams may hold as pending columns before they are folded into the tallies:
# about 32 MiB (8 bytes a number at most) whatever the traffic or the number of models, and
# enough rows per fold (about 85,000 at 36 features) that numpy's per-call cost vanishes.
FOLD_CELLS = 4_000_000


def utc_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- who is judged ---------------------------------------------------------------------------
def configured_challenger(entry: ModelEntry) -> str | None:
    """The alias a model's shadow (preferred: it scores the same rows) or canary names."""
    if entry.shadow is not None:
        return entry.shadow.alias
    if entry.canary is not None:
        return entry.canary.alias
    return None


def task_of(metadata: BundleMetadata, baseline: Baseline | None = None) -> str:
    """The version's task: its metadata's, else its baseline's, else classification (the
    only task before metadata carried one)."""
    for task in (getattr(metadata, "task", None), baseline.task if baseline else None):
        if task in ("classification", "regression"):
            return str(task)
    return "classification"


def routed_signals(registry: Registry, model: str) -> list[str]:
    """The signals ``registry`` routes to ``model``: its routes' (any ticker, any timeframe),
    and as an asset class's fallback, the default signal of the tickers it answers for."""
    found = {s for route in registry.tickers.values() for s, _, m in route.routes() if m == model}
    classes = {cls for cls, fallback in registry.fallbacks.items() if fallback == model}
    if classes:
        found.add(DEFAULT_SIGNAL)  # a ticker the registry does not list asks on the default
        found |= {
            route.default_signal
            for route in registry.tickers.values()
            if route.asset_class in classes and route.on() is None
        }
    return sorted(found)


@dataclass(frozen=True)
class Candidate:
    """A model to judge, its baseline as stored (None: none yet) and any baseline problem,
    and the signals the registry routes to it."""

    subject: Subject
    baseline: StoredBaseline | None
    baseline_problem: str | None = None
    routed: tuple[str, ...] = ()


def load_candidates(
    store: Store, registry_key: str, config: MonitorConfig, models: list[str] | None = None
) -> tuple[list[Candidate], dict[str, str]]:
    """The models to judge (those whose champion alias exists) and why others were skipped."""
    registry = read_registry(store, registry_key).registry
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
            challenger_alias=configured_challenger(entry),
            aliases={a: t.version for a, t in entry.aliases.items()},
            policy=metadata.network is not None and metadata.network.policy is not None,
        )
        candidates.append(
            Candidate(subject, stored, problem, tuple(routed_signals(registry, name)))
        )
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
    hasher = KeyHasher(load_salt(store))
    sampler = Sampler(hasher, config.outcome_capacity)
    streams = {
        c.subject.model: ModelStream(
            c.subject, period.days, sampler, agreement_tolerance=config.agreement_tolerance
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
    wanted = _count_each_id_once(list(streams.values()))
    outcome_counts = capture_reader.ReadCounts()
    # Outcomes arrive after the predictions: read every day received since the period began,
    # through the day the period ends on and today; keep only those of served ids.
    outcome_until = max(period.until, now.date()) + timedelta(days=1)
    with capture_reader.no_cycle_collection():
        index = OutcomeIndex.build(
            latest_outcomes(store, period.since, outcome_until, outcome_counts), hasher, wanted
        )
    for stream in streams.values():
        stream.judge(index)
    history = read_records(store, MONITORING_HISTORY_KEY).records
    day = now.date().isoformat()
    reports = [_judge(c, streams[c.subject.model], config, store, history, day) for c in candidates]
    return RunReport(
        run_id=uuid.uuid4().hex[:12],
        started_at=utc_stamp(now),
        period=period,
        config=config,
        models=reports,
        capture=CaptureCounts(
            objects=counts.objects,
            lines=counts.lines,
            skipped=counts.malformed,
            skipped_by_reason=dict(sorted(counts.reasons.items())),
            outside_period=outside,
            unmonitored_rows=sum(unmonitored.values()) if unmonitored else None,
        ),
        outcomes=OutcomeCounts(
            objects=outcome_counts.objects,
            lines=outcome_counts.lines,
            skipped=outcome_counts.malformed,
            skipped_by_reason=dict(sorted(outcome_counts.reasons.items())),
            request_ids=len(index),
            ignored=index.ignored,
            sample_rate=sampler.rate,
        ),
        skipped_models=skipped,
        seconds=time.perf_counter() - clock,
    )


def _count_each_id_once(streams: list[ModelStream]) -> np.ndarray:
    """Drop, from every stream, captured rows whose request id an earlier row carried (in
    any model); returns the sorted keys left, the ones outcomes are read for."""
    parts = [stream.evidence_keys() for stream in streams]
    if not parts:
        return np.zeros(0, dtype=np.uint64)
    keys = np.concatenate([k for k, _ in parts])
    order = np.concatenate([o for _, o in parts])
    keep = first_occurrences(keys, order)
    start = 0
    for stream, (own, _) in zip(streams, parts, strict=True):
        stream.keep_first(keep[start : start + own.size])
        start += own.size
    return np.unique(keys[keep])


def _fold(streams: Iterable[ModelStream]) -> None:
    for stream in streams:
        stream.fold()


# -- judging one model -----------------------------------------------------------------------
def _judge(
    candidate: Candidate,
    stream: ModelStream,
    config: MonitorConfig,
    store: Store,
    history_lines: list[dict[str, Any]],
    day: str,
) -> ModelReport:
    subject = candidate.subject
    baseline = subject.baseline
    metric = primary_metric(subject.task)
    features = _feature_drift(stream, baseline, config)
    output = _output_drift(stream, baseline, config)
    performance = _performance(stream, baseline, metric, config)
    mode = _mode(stream)
    windows = _windows(stream, baseline, metric, mode, config)
    comparison, test = _comparison(stream, metric, mode, windows)
    today = DailyRun(
        day=day,
        champion=subject.champion_version,
        challenger=stream.challenger_version if mode is not None else None,
        win_rate=comparison.win_rate,
        windows_counted=comparison.windows_counted,
        drift_pct=performance.drift_pct,
    )
    read = daily_runs(history_lines, subject.model, today)
    won = winning_streak(read.runs, config.switch_win_rate)
    rising = degrading_streak(read.runs)
    history = History(
        runs_needed=config.seed_runs,
        winning_days=[r.day for r in won],
        degrading=[r.drift_pct for r in rising if r.drift_pct is not None],
        days=len(read.runs),
        skipped_lines=read.skipped,
    )
    decision = recommend(
        Evidence(
            performance.drift_pct,
            comparison.win_rate,
            test,
            drifted_inputs(features, output),
            windows_won=comparison.windows_won,
            windows_counted=comparison.windows_counted,
            winning_days=len(won),
            degrading=tuple(history.degrading),
        ),
        config.rule,
    )
    challenger = None
    if stream.challenger_alias is not None and stream.challenger_version is not None:
        challenger = ChallengerRef(
            alias=stream.challenger_alias,
            version=stream.challenger_version,
            mode=mode,
            baseline=_challenger_baseline(store, subject, stream.challenger_version),
        )
    champion_ref = f"{subject.champion_alias} {subject.champion_version}"
    challenger_ref = f"{challenger.alias} {challenger.version}" if challenger else None
    return ModelReport(
        model=subject.model,
        task=subject.task,
        signals=Signals(answered=dict(stream.signals.most_common()), routed=list(candidate.routed)),
        champion=ChampionRef(
            alias=subject.champion_alias,
            version=subject.champion_version,
            baseline=candidate.baseline,
            baseline_problem=candidate.baseline_problem,
        ),
        challenger=challenger,
        rows=int(stream.rows.sum()),
        rows_other_versions=stream.other_versions,
        feature_drift=features,
        output_drift=output,
        warnings=_warnings(stream),
        performance=performance,
        comparison=comparison,
        test=test,
        windows=windows,
        joined=Joined(
            evidence_rows=stream.joined.evidence_rows,
            repeated_ids=stream.joined.repeated_ids,
            pinned_rows=stream.pinned_rows,
            wrong_task=stream.joined.wrong_task,
            corrected=stream.joined.corrected,
        ),
        history=history,
        recommendation=Decision(
            action=decision.action,
            reason=decision.reason,
            sentence=seed_sentence(decision.action, champion_ref, challenger_ref),
        ),
    )


def _warnings(stream: ModelStream) -> RequestWarnings | None:
    """The answers' warnings over the run, most warned feature first (None: none checked)."""
    if not stream.checked_rows:
        return None
    per_feature = {
        name: FeatureWarnings(**dict(zip(WARNING_CODES, counts, strict=True)))
        for name, counts in stream.warnings.items()
    }
    ranked = sorted(per_feature.items(), key=lambda item: (-item[1].total, item[0]))
    return RequestWarnings(
        rows=stream.checked_rows,
        warned_rows=stream.warned_rows,
        warned_share=stream.warned_rows / stream.checked_rows,
        features=dict(ranked),
    )


def _challenger_baseline(store: Store, subject: Subject, version: str) -> Baseline | None:
    """The challenger's baseline, for its training window (the seed's ``model_b`` block)."""
    try:
        metadata, _ = read_metadata(store, subject.model, version)
        stored = load_baseline(store, metadata)
    except (TickerserveError, BaselineError):
        return None
    return None if stored is None else stored.baseline


def _feature_psi(
    counts: np.ndarray, hist: Histogram, at_points: np.ndarray, config: MonitorConfig
) -> FeatureFigure:
    rows = int(counts.sum())
    if rows == 0:
        return FeatureFigure(rows=0)
    missing_share = float(counts[-1] / rows)
    if rows < config.min_drift_rows:
        return FeatureFigure(rows=rows, missing_share=missing_share, too_few_rows=True)
    value = psi(hist.expected(), counts / rows, config.psi_epsilon)
    present = rows - int(counts[-1])
    linf = None
    if present and hist.cdf_points:
        at_or_below = np.cumsum(at_points)[:-1]
        linf = linf_at_points(np.asarray(hist.cdf), at_or_below, present)
    return FeatureFigure(
        rows=rows,
        psi=value,
        linf=linf,
        level=config.psi.level(value),
        missing_share=missing_share,
    )


def _feature_drift(
    stream: ModelStream, baseline: Baseline | None, config: MonitorConfig
) -> FeatureDrift | None:
    if baseline is None or not stream.features:
        return None
    per_feature = {
        name: _feature_psi(
            fc.bins.sum(axis=0), baseline.features[name], fc.at_points.sum(axis=0), config
        )
        for name, fc in stream.features.items()
    }
    return FeatureDrift(
        epsilon=config.psi_epsilon,
        thresholds=config.psi,
        summary=DriftSummary.of(per_feature),
        features=per_feature,
    )


def _output_drift(
    stream: ModelStream, baseline: Baseline | None, config: MonitorConfig, window: int | None = None
) -> OutputDrift | None:
    if baseline is None or baseline.output is None:
        return None
    counts = stream.output_counts.sum(axis=0) if window is None else stream.output_counts[window]
    rows = int(counts.sum())
    if isinstance(baseline.output, ClassShares):
        expected = class_shares_expected(baseline.output, stream.classes)
        kind: Literal["classes", "values", "actions", "action_values"] = "classes"
    else:
        expected = baseline.output.expected()
        kind = "values"
    if stream.subject.policy:  # a policy's output is its action: the PSI of actions
        kind = "actions" if kind == "classes" else "action_values"
    if rows >= config.min_drift_rows:
        value = psi(expected, counts / rows, config.psi_epsilon)
        return OutputDrift(kind=kind, rows=rows, psi=value, level=config.psi.level(value))
    return OutputDrift(kind=kind, rows=rows, too_few_rows=bool(rows))


def _merged(tallies: list[Tally], task: str, n_classes: int) -> Tally:
    total = new_tally(task, n_classes)  # type: ignore[arg-type]
    for t in tallies:
        total.merge(t)  # type: ignore[arg-type]
    return total


def _performance(
    stream: ModelStream, baseline: Baseline | None, metric: str, config: MonitorConfig
) -> Performance:
    n_classes = len(stream.classes)
    tally = _merged(stream.champion, stream.task, n_classes)
    figures = tally.metrics()
    scored = int(figures.pop("n") or 0)
    sampled = int(stream.sampled_rows.sum())
    base = baseline.metrics.get(metric) if baseline else None
    current = figures.get(metric)
    return Performance(
        metric=metric,
        baseline=base,
        current=current,
        drift_pct=drift_pct(metric, base, current) if scored >= config.min_window else None,
        metrics=figures,
        baseline_metrics=dict(baseline.metrics) if baseline else {},
        scored=scored,
        rows=int(stream.champion_rows.sum()),
        coverage=scored / sampled if sampled else None,
        too_few_outcomes=scored < config.min_window,
        corrected=stream.joined.corrected,
        estimated=_estimated(stream, baseline, current if metric == "accuracy" else None),
    )


def _estimated(
    stream: ModelStream, baseline: Baseline | None, realized: float | None
) -> Estimated | None:
    """The champion's accuracy estimated from its confidence over the whole run."""
    counts = stream.confidence_counts
    if counts is None or stream.calibration is None:
        return None
    found = estimate(stream.calibration, counts.sum(axis=0))
    base = baseline.metrics.get("accuracy") if baseline else None
    return Estimated(
        accuracy=found.accuracy,
        realized=realized,
        rows=found.rows,
        drift_pct=drift_pct("accuracy", base, found.accuracy),
        trusted=found.trusted,
        problem=found.problem,
        unseen_share=found.unseen_share,
    )


def _winner(metric: str, champion: float, challenger: float) -> Winner:
    return MODEL_B if better(metric, challenger, champion) else MODEL_A


def _mode(stream: ModelStream) -> Mode | None:
    """Shadow when the challenger scored the champion's rows, canary when it only answered
    its own, None when it did neither."""
    paired_scored = sum(p.champion.n for p in stream.pairs)
    canary_scored = sum(t.n for t in stream.canary)
    paired_rows = sum(p.rows for p in stream.pairs)
    if paired_scored or (paired_rows and not canary_scored):
        return SHADOW
    if canary_scored or stream.canary_rows.sum():
        return CANARY
    return None


def _comparison(
    stream: ModelStream, metric: str, mode: Mode | None, windows: list[WindowReport]
) -> tuple[Comparison, Significance | None]:
    """Champion against challenger over the whole run, and the significance test."""
    n_classes = len(stream.classes)
    task = stream.task
    paired_scored = sum(p.champion.n for p in stream.pairs)
    paired_rows = sum(p.rows for p in stream.pairs)
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
    agree = sum(p.agree for p in stream.pairs)
    counted = [w for w in windows if w.winner is not None]
    comparison = Comparison(
        mode=mode,
        metric=metric,
        champion=a,
        challenger=b,
        winner=None if a is None or b is None else _winner(metric, a, b),
        agreement=agree / paired_rows if paired_rows else None,
        paired_rows=paired_rows,
        canary_rows=int(stream.canary_rows.sum()),
        windows_counted=len(counted),
        windows_won=sum(w.winner == MODEL_B for w in counted),
        win_rate=sum(w.winner == MODEL_B for w in counted) / len(counted) if counted else None,
    )
    return comparison, test


def _window_estimate(stream: ModelStream, window: int) -> float | None:
    counts = stream.confidence_counts
    if counts is None or stream.calibration is None:
        return None
    return estimate(stream.calibration, counts[window]).accuracy


def _windows(
    stream: ModelStream,
    baseline: Baseline | None,
    metric: str,
    mode: Mode | None,
    config: MonitorConfig,
) -> list[WindowReport]:
    out: list[WindowReport] = []
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
        drift = None
        if baseline is not None and stream.features:
            drift = DriftSummary.of(
                {
                    name: _feature_psi(fc.bins[i], baseline.features[name], fc.at_points[i], config)
                    for name, fc in stream.features.items()
                }
            )
        out.append(
            WindowReport(
                name=day,
                metric=metric,
                n_samples=n_a,
                champion=a,
                challenger=b,
                winner=_winner(metric, a, b) if enough and a is not None and b is not None
                else None,
                too_small=b_tally is not None and not enough,
                rows=int(stream.rows[i]),
                n_samples_b=n_b if mode == CANARY else None,
                drift=drift,
                output=_output_drift(stream, baseline, config, i),
                estimated_accuracy=_window_estimate(stream, i),
            )
        )  # fmt: skip
    return out
