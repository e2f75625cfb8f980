"""What a monitor run found, typed: a ``RunReport`` holding one ``ModelReport`` per model.

``evaluate`` builds it; ``run`` (promotion), ``cloudwatch`` (metrics), ``monitoring_history``
(the history line), the scheduled function's summary and the command line read its fields.
Its JSON is written in two places only: ``to_dict`` here (``monitor run --json``) and
``monitoring_history.history_record`` (the history line, a superset of seed 003's). Model A
is the champion and Model B the challenger, as the seed names them.

A part's ``to_dict`` is its fields in order (``Part``), each turned into JSON the same way; a
field marked ``OMIT_NONE`` or ``OMIT_FALSE`` is left out while it holds that value. Adding a
figure is a field on the part it belongs to (it then appears in ``--json``), plus a key in
``history_record`` when the history should keep it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from typing import Any, ClassVar, Literal

from tickerserve.baselines.baseline import Baseline
from tickerserve.baselines.metrics import Task
from tickerserve.baselines.persistence import StoredBaseline
from tickerserve.contract import DEFAULT_SIGNAL
from tickerserve.monitor import capture_reader
from tickerserve.monitor.config import DEFAULT_DAYS, MAX_DAYS, Level, MonitorConfig, Threshold
from tickerserve.monitor.model_stream import Mode
from tickerserve.monitor.recommendation import Action
from tickerserve.monitor.significance import Significance
from tickerserve.publishing.promotion import AliasMove

Winner = Literal["Model A", "Model B"]
MODEL_A: Winner = "Model A"  # the champion
MODEL_B: Winner = "Model B"  # the challenger


# Field metadata: the JSON leaves the field out while it holds this value (its default).
OMIT_NONE = {"omit": None}
OMIT_FALSE = {"omit": False}


def to_json(value: Any) -> Any:
    """A report value as JSON-ready data (anything with ``to_dict`` through it)."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


class Part:
    """A report part whose JSON is its fields in order (see the module's docstring)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if "omit" in f.metadata and value is f.metadata["omit"]:
                continue
            out[f.name] = to_json(value)
        return out


@dataclass(frozen=True)
class Period:
    """``[since, until)`` in whole UTC days."""

    since: date
    until: date

    def __post_init__(self) -> None:
        if self.until <= self.since:
            raise ValueError(f"--until {self.until} must be after --since {self.since}")
        if (self.until - self.since).days > MAX_DAYS:
            raise ValueError(f"a run covers at most {MAX_DAYS} days")

    @classmethod
    def ending(cls, until: date, days: int = DEFAULT_DAYS) -> Period:
        return cls(until - timedelta(days=days), until)

    @property
    def days(self) -> list[str]:
        return [d.isoformat() for d in capture_reader.days(self.since, self.until)]


# -- drift -----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class FeatureFigure(Part):
    """One feature's PSI (and CDF distance) over a window; None where it was not judged."""

    rows: int
    psi: float | None = None
    linf: float | None = None  # L-infinity distance of the CDFs at the baseline's points
    level: Level | None = None
    # Of the rows; absent without rows.
    missing_share: float | None = field(default=None, metadata=OMIT_NONE)
    # Rows, but fewer than a PSI is judged from.
    too_few_rows: bool = field(default=False, metadata=OMIT_FALSE)


@dataclass(frozen=True, kw_only=True)
class DriftSummary(Part):
    """What the features' figures add up to: how many were judged, the worst, which drifted."""

    judged: int
    psi_max: float | None
    drifted_share: float | None
    drifted: list[str]
    watch: list[str]

    @classmethod
    def of(cls, per_feature: dict[str, FeatureFigure]) -> DriftSummary:
        judged = {n: f for n, f in per_feature.items() if f.psi is not None}
        drifted = sorted(n for n, f in judged.items() if f.level == "drift")
        return cls(
            judged=len(judged),
            psi_max=max((f.psi for f in judged.values() if f.psi is not None), default=None),
            drifted_share=len(drifted) / len(judged) if judged else None,
            drifted=drifted,
            watch=sorted(n for n, f in judged.items() if f.level == "watch"),
        )


@dataclass(frozen=True, kw_only=True)
class FeatureDrift(Part):
    """Input drift over the whole run: the statistic and its band, the summary, per feature."""

    CDF_DISTANCE: ClassVar[str] = "L-infinity at the baseline's CDF points"

    statistic: str = "psi"
    epsilon: float
    thresholds: Threshold
    cdf_distance: str = CDF_DISTANCE
    summary: DriftSummary
    features: dict[str, FeatureFigure]

    def to_dict(self) -> dict[str, Any]:
        head = {
            "statistic": self.statistic,
            "epsilon": self.epsilon,
            "thresholds": self.thresholds.to_dict(),
            "cdf_distance": self.cdf_distance,
        }
        return head | self.summary.to_dict() | {"features": to_json(self.features)}

    @property
    def drifted(self) -> bool:
        return bool(self.summary.drifted)


@dataclass(frozen=True, kw_only=True)
class OutputDrift(Part):
    """PSI of the champion's outputs: predicted classes, or binned values (a policy's:
    its actions, or its box action's binned first value)."""

    statistic: str = "psi"
    kind: Literal["classes", "values", "actions", "action_values"]
    rows: int
    psi: float | None = None
    level: Level | None = None
    too_few_rows: bool = field(default=False, metadata=OMIT_FALSE)


# -- request warnings ------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class FeatureWarnings(Part):
    """How often one feature was warned about, by code."""

    out_of_range: int = 0
    unexpected_missing: int = 0

    @property
    def total(self) -> int:
        return self.out_of_range + self.unexpected_missing


@dataclass(frozen=True, kw_only=True)
class RequestWarnings(Part):
    """The warnings captured answers carried (issue 21): of the rows whose answering version
    had feature ranges, how many warned, and per feature by code (most warned first)."""

    rows: int  # captured rows whose answer was checked against its version's ranges
    warned_rows: int
    warned_share: float
    features: dict[str, FeatureWarnings]


# -- performance and comparison --------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Estimated(Part):
    """Accuracy estimated from the champion's confidence before outcomes arrive (CBPE on the
    baseline's calibration), beside the realized accuracy of the rows whose outcomes did."""

    statistic: str = "mean calibrated confidence (CBPE, histogram binning)"
    accuracy: float | None
    realized: float | None  # of the scored rows, once outcomes are in
    rows: int  # served rows with a confidence
    drift_pct: float | None  # of the estimate against the baseline's accuracy (+ worse)
    trusted: bool  # False: badly calibrated on the reference (or too few labelled rows)
    problem: str | None = field(default=None, metadata=OMIT_NONE)
    unseen_share: float = 0.0  # rows in confidence bins the reference never reached


@dataclass(frozen=True, kw_only=True)
class Performance(Part):
    """The champion's metrics on rows whose outcomes arrived, against its baseline's.

    One sign everywhere: ``drift_pct`` is how much worse the champion is than its baseline,
    in percent of the baseline's value (positive: worse, negative: better; for accuracy and
    RMSE alike). ``model_a_drift_pct`` is seed 003's field as the seed uses it: the
    degradation alone (0 when the champion is better), which its ``> 10 % -> retrain`` reads.
    """

    metric: str  # the primary metric: accuracy (classifiers) or rmse (regressors)
    baseline: float | None
    current: float | None
    # Relative degradation in percent (negative: better than the baseline); None with fewer
    # scored outcomes than a window needs.
    drift_pct: float | None
    model_a_drift_pct: float | None = field(init=False)  # seed 003's: degradation only
    metrics: dict[str, float | None]
    baseline_metrics: dict[str, float]
    scored: int  # rows with an outcome, in the outcome sample
    rows: int  # rows with a champion output
    coverage: float | None  # scored / rows in the sample
    too_few_outcomes: bool
    corrected: int = 0  # scored rows whose outcome was corrected after it first arrived
    estimated: Estimated | None = field(default=None, metadata=OMIT_NONE)

    def __post_init__(self) -> None:
        gain = None if self.drift_pct is None else max(0.0, self.drift_pct)
        object.__setattr__(self, "model_a_drift_pct", gain)


@dataclass(frozen=True, kw_only=True)
class Joined(Part):
    """How the model's captured rows met the outcomes: only served rows are evidence, a
    request id counts once, an outcome must fit the task."""

    evidence_rows: int  # rows kept to be judged (in the sample)
    repeated_ids: int  # rows whose request id an earlier captured row carried: not counted
    pinned_rows: int  # the champion's version asked for by version or another alias: no vote
    wrong_task: int  # rows whose id has only an outcome of the other kind (never a truth)
    corrected: int  # scored rows whose outcome was corrected


@dataclass(frozen=True, kw_only=True)
class History(Part):
    """What the monitoring history adds to this run (seed 003's multi-run rules)."""

    runs_needed: int
    winning_days: list[str]  # the latest days in a row the challenger won (this run's too)
    degrading: list[float]  # the champion's drift over the latest days it rose, oldest first
    days: int  # days with a run of this model, this run's included
    skipped_lines: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Comparison(Part):
    """Champion (Model A) against challenger (Model B) over the whole run."""

    mode: Mode | None  # None: no challenger answered or was scored
    metric: str
    champion: float | None
    challenger: float | None
    winner: Winner | None
    agreement: float | None  # shadow: share of paired rows where both answered alike
    paired_rows: int
    canary_rows: int
    windows_counted: int  # windows with enough scored outcomes on both sides
    windows_won: int  # of those, the windows Model B won
    win_rate: float | None  # Model B's share of the windows counted


@dataclass(frozen=True, kw_only=True)
class WindowReport:
    """One daily window: both sides on the primary metric, the winner, drift that day."""

    name: str  # the UTC day
    metric: str
    n_samples: int  # scored outcomes of the champion
    champion: float | None
    challenger: float | None
    winner: Winner | None  # None: no challenger, or too few outcomes to count
    too_small: bool
    rows: int
    n_samples_b: int | None = None  # canary: the challenger's own scored outcomes
    drift: DriftSummary | None = None  # None: no baseline (or no features) to judge against
    output: OutputDrift | None = None
    # Classifiers with a calibrated baseline: the champion's accuracy estimated from its
    # confidence that day, known before the outcomes are.
    estimated_accuracy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "n_samples": self.n_samples,
            f"model_a_{self.metric}": self.champion,
            f"model_b_{self.metric}": self.challenger,
            "winner": self.winner,
            "too_small": self.too_small,
            "rows": self.rows,
        }
        if self.n_samples_b is not None:
            out["n_samples_b"] = self.n_samples_b
        if self.estimated_accuracy is not None:
            out["estimated_accuracy"] = self.estimated_accuracy
        if self.drift is not None:
            out["psi_max"] = self.drift.psi_max
            out["drifted_share"] = self.drift.drifted_share
        if self.output is not None:
            out["output_psi"] = self.output.psi
        return out


# -- who was judged, and what to do ----------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Signals(Part):
    """Which signals the model serves (issue 14: a ticker may route several models, one per
    signal): the rows it answered per signal in the run's capture (a record captured before
    signals counts on the default signal), and the signals the registry routes to it now."""

    answered: dict[str, int] = field(default_factory=dict)  # most answered first
    routed: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """Every signal it answered or is routed on: answered ones first (most rows first)."""
        return list(self.answered) + sorted(set(self.routed) - set(self.answered))

    @property
    def beyond_default(self) -> bool:
        """It serves a signal other than the contract's default (what ``monitor run`` shows)."""
        return any(s != DEFAULT_SIGNAL for s in self.names)


@dataclass(frozen=True, kw_only=True)
class ChampionRef:
    """Model A: the champion alias's version and its baseline as the run found it."""

    alias: str
    version: str
    baseline: StoredBaseline | None
    baseline_problem: str | None = None  # why a baseline that exists could not be used

    @property
    def training(self) -> dict[str, Any]:
        return self.baseline.baseline.training.to_dict() if self.baseline else {}

    def baseline_dict(self) -> dict[str, Any]:
        stored = self.baseline
        if stored is None:
            return {"found": False, "problem": self.baseline_problem}
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

    def to_dict(self) -> dict[str, Any]:
        return {"alias": self.alias, "version": self.version, "baseline": self.baseline_dict()}


@dataclass(frozen=True, kw_only=True)
class ChallengerRef:
    """Model B: the challenger alias's version, how it was compared, its training window."""

    alias: str
    version: str
    mode: Mode | None
    baseline: Baseline | None  # for the seed's ``model_b`` block

    @property
    def training(self) -> dict[str, Any]:
        return self.baseline.training.to_dict() if self.baseline else {}

    def to_dict(self) -> dict[str, Any]:
        baseline = self.baseline
        return {
            "alias": self.alias,
            "version": self.version,
            "mode": self.mode,
            "baseline": None
            if baseline is None
            else {"training": baseline.training.to_dict(), "metrics": baseline.metrics},
        }


@dataclass(frozen=True, kw_only=True)
class Decision(Part):
    """The recommendation: the action, the figures that decided, the seed's sentence."""

    action: Action
    reason: str
    sentence: str


@dataclass(frozen=True)
class Promotion:
    """What ``--auto-promote`` did for a model: the alias move, or why it was refused."""

    model: str
    move: AliasMove | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.move is not None:
            return dict(self.move.to_dict())
        return {"model": self.model, "error": self.error}


@dataclass(kw_only=True)
class ModelReport(Part):
    """Everything a run found for one model."""

    model: str
    task: Task
    signals: Signals = field(default_factory=Signals)
    champion: ChampionRef
    challenger: ChallengerRef | None
    rows: int  # captured rows in the run's windows
    rows_other_versions: int  # answered by versions the aliases no longer name
    feature_drift: FeatureDrift | None  # None: no baseline (or no features) to judge against
    output_drift: OutputDrift | None
    # None: no captured answer was checked (no version with feature ranges answered).
    warnings: RequestWarnings | None = field(default=None, metadata=OMIT_NONE)
    performance: Performance
    comparison: Comparison
    test: Significance | None  # champion vs challenger, paired where possible
    windows: list[WindowReport]
    joined: Joined
    history: History
    recommendation: Decision
    promoted: Promotion | None = field(default=None, metadata=OMIT_NONE)  # set by auto-promotion

    @property
    def action(self) -> Action:
        return self.recommendation.action

    @property
    def inputs_drifted(self) -> bool:
        return drifted_inputs(self.feature_drift, self.output_drift)


def drifted_inputs(features: FeatureDrift | None, output: OutputDrift | None) -> bool:
    """A feature, or the output distribution, at "drift" (the rule watches such a champion)."""
    return bool(features and features.drifted) or (output is not None and output.level == "drift")


# -- the run ---------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class CaptureCounts(Part):
    """What the run read of capture."""

    objects: int
    lines: int
    skipped: int  # lines that were not capture records
    skipped_by_reason: dict[str, int]  # not_json, not_a_record, unreadable_object
    outside_period: int  # records whose day is outside the run's windows
    # Rows of models the run did not judge; absent when there were none.
    unmonitored_rows: int | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, kw_only=True)
class OutcomeCounts(Part):
    """What the run read of outcomes."""

    objects: int
    lines: int
    skipped: int
    skipped_by_reason: dict[str, int]  # not_json, not_an_outcome, invalid_time
    request_ids: int  # captured request ids with an outcome (the latest of each kind)
    ignored: int  # outcomes for request ids no captured row carried: never judged
    # 1.0, or the share of captured request ids kept past the capacity (by the store's
    # secret salt, never the bare id)
    sample_rate: float


@dataclass(kw_only=True)
class RunReport:
    run_id: str
    started_at: str  # UTC, ISO 8601 with microseconds and a Z
    period: Period
    config: MonitorConfig
    models: list[ModelReport]
    capture: CaptureCounts
    outcomes: OutcomeCounts
    skipped_models: dict[str, str]  # model -> why it was not judged
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "since": self.period.since.isoformat(),
            "until": self.period.until.isoformat(),
            "config": self.config.to_dict(),
            "capture": self.capture.to_dict(),
            "outcomes": self.outcomes.to_dict(),
            "skipped_models": self.skipped_models,
            "models": [m.to_dict() for m in self.models],
            "seconds": round(self.seconds, 3),
        }
