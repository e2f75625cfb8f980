"""The baseline: what "normal" looked like for one model version (NannyML's ``fit``).

Computed once from a reference sample (usually the validation set) and stored with the
version: per feature, 10 quantile bins (edges and proportions), the missing-value share and
the empirical CDF at 101 quantile points; the distribution of the model's outputs (predicted
classes, or binned values); the validation metrics; the training and validation windows; for a
classifier with labelled reference rows, its reliability table (``calibration``: what its
confidence is worth, for estimating accuracy before outcomes arrive); and each feature's range
(``ranges``: the reference's 0.1 % and 99.9 % quantiles by default, and its missing share),
which the version keeps where the prediction function reads it (issue 21).
A monitor run compares windows of captured traffic against it.

Bins: ``edges`` are the inner edges (reference deciles, each an observed value), ascending;
value ``x`` falls in bin ``searchsorted(edges, x, side="right")``, i.e. bin ``i`` is
``[edges[i-1], edges[i])`` with open ends. Missing values (null, NaN) are counted apart in
``missing_share``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tickerserve.baselines.calibration import Calibration, fit_calibration
from tickerserve.baselines.metrics import TASKS, ClassificationTally, RegressionTally, Task
from tickerserve.baselines.ranges import (
    DEFAULT_QUANTILES,
    Quantiles,
    Ranges,
    RangesError,
    estimate,
    fit_ranges,
)

SCHEMA = 1
DEFAULT_BINS = 10
DEFAULT_CDF_POINTS = 101


class BaselineError(ValueError):
    """A baseline that cannot be built or read."""


@dataclass(frozen=True)
class Histogram:
    """A reference distribution of one numeric column."""

    edges: list[float]
    proportions: list[float]  # of the non-missing values, one per bin (len(edges) + 1)
    missing_share: float
    cdf_points: list[float]
    cdf: list[float]  # share of non-missing reference values <= each point
    n: int  # non-missing reference values

    @property
    def n_bins(self) -> int:
        return len(self.edges) + 1

    def expected(self) -> np.ndarray:
        """Proportions over the value bins and a last "missing" bin, summing to 1."""
        present = 1.0 - self.missing_share
        return np.append(np.asarray(self.proportions) * present, self.missing_share)

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": self.edges,
            "proportions": self.proportions,
            "missing_share": self.missing_share,
            "cdf_points": self.cdf_points,
            "cdf": self.cdf,
            "n": self.n,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Histogram:
        hist = cls(
            edges=[float(x) for x in raw["edges"]],
            proportions=[float(x) for x in raw["proportions"]],
            missing_share=float(raw["missing_share"]),
            cdf_points=[float(x) for x in raw["cdf_points"]],
            cdf=[float(x) for x in raw["cdf"]],
            n=int(raw["n"]),
        )
        hist.validate()
        return hist

    def validate(self) -> None:
        edges, points = np.asarray(self.edges), np.asarray(self.cdf_points)
        if len(self.proportions) != self.n_bins:
            raise ValueError(f"{self.n_bins} bins need {self.n_bins} proportions")
        if np.any(np.diff(edges) <= 0) or np.any(np.diff(points) <= 0):
            raise ValueError("edges and cdf_points must be strictly increasing")
        if len(self.cdf) != len(self.cdf_points):
            raise ValueError("cdf needs one value per cdf point")
        if not 0.0 <= self.missing_share <= 1.0:
            raise ValueError("missing_share must be in 0..1")
        for value in (*self.edges, *self.proportions, *self.cdf_points, *self.cdf):
            if not math.isfinite(value):
                raise ValueError("histogram values must be finite")


def fit_histogram(
    values: np.ndarray, bins: int = DEFAULT_BINS, cdf_points: int = DEFAULT_CDF_POINTS
) -> Histogram:
    """Quantile bins and CDF points of one column (NaN = missing)."""
    values = np.asarray(values, dtype=np.float64)
    if np.isinf(values).any():
        raise BaselineError("reference values must be finite numbers or missing")
    missing = np.isnan(values)
    present = np.sort(values[~missing])
    missing_share = float(missing.mean()) if values.size else 0.0
    if present.size == 0:
        return Histogram([], [0.0], missing_share, [], [], 0)
    # Edges are observed values (the inverted empirical CDF), so a discrete feature gets one
    # edge per level it takes instead of interpolated edges between levels.
    inner = np.quantile(present, np.arange(1, bins) / bins, method="inverted_cdf")
    edges = np.unique(inner)  # a discrete feature has fewer distinct edges than bins
    index = np.searchsorted(edges, present, side="right")
    proportions = np.bincount(index, minlength=edges.size + 1) / present.size
    points = np.unique(np.quantile(present, np.linspace(0.0, 1.0, cdf_points)))
    cdf = np.searchsorted(present, points, side="right") / present.size
    return Histogram(
        edges=edges.tolist(),
        proportions=proportions.tolist(),
        missing_share=missing_share,
        cdf_points=points.tolist(),
        cdf=cdf.tolist(),
        n=int(present.size),
    )


@dataclass(frozen=True)
class ClassShares:
    """The reference distribution of predicted classes (in the model's class order)."""

    classes: list[str]
    proportions: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {"classes": self.classes, "proportions": self.proportions}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ClassShares:
        shares = cls([str(c) for c in raw["classes"]], [float(p) for p in raw["proportions"]])
        if len(shares.classes) != len(shares.proportions) or not shares.classes:
            raise ValueError("output classes and proportions must pair up")
        return shares


Output = ClassShares | Histogram


@dataclass(frozen=True)
class Window:
    """A date range (inclusive, ISO dates) and how many samples it held."""

    start: str | None = None
    end: str | None = None
    samples: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "samples": self.samples}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> Window:
        raw = raw or {}
        samples = raw.get("samples")
        return cls(
            None if raw.get("start") is None else str(raw["start"]),
            None if raw.get("end") is None else str(raw["end"]),
            None if samples is None else int(samples),
        )


@dataclass(frozen=True)
class Baseline:
    """One version's reference: feature and output distributions, metrics, windows."""

    model: str
    version: str
    task: Task
    features: dict[str, Histogram] = field(default_factory=dict)
    output: Output | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    training: Window = field(default_factory=Window)
    validation: Window = field(default_factory=Window)
    rows: int = 0
    bins: int = DEFAULT_BINS
    created_at: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    calibration: Calibration | None = None  # classifiers with labelled reference rows
    # Absent from baselines fitted before ranges existed (``feature_ranges`` estimates them).
    ranges: Ranges | None = None

    def to_dict(self) -> dict[str, Any]:
        optional: dict[str, Any] = {}
        if self.calibration is not None:
            optional["calibration"] = self.calibration.to_dict()
        if self.ranges is not None:
            optional["ranges"] = self.ranges.to_dict()
        return {
            "schema": SCHEMA,
            "model": self.model,
            "version": self.version,
            "task": self.task,
            "created_at": self.created_at,
            "rows": self.rows,
            "bins": self.bins,
            "metrics": self.metrics,
            "windows": {
                "training": self.training.to_dict(),
                "validation": self.validation.to_dict(),
            },
            "output": None if self.output is None else self.output.to_dict(),
            "features": {name: h.to_dict() for name, h in self.features.items()},
            "source": self.source,
            **optional,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> Baseline:
        """Parse and validate; a newer schema or a malformed file raises ``BaselineError``."""
        try:
            raw = json.loads(data)
            if not isinstance(raw, dict):
                raise TypeError("top level must be an object")
            return cls.from_dict(raw)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # RangesError too
            raise BaselineError(f"baseline is invalid: {exc}") from None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Baseline:
        schema = raw.get("schema")
        if schema != SCHEMA:
            raise ValueError(f"unsupported baseline schema {schema!r} (this reads {SCHEMA})")
        task = raw.get("task")
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}")
        output_raw = raw.get("output")
        output: Output | None = None
        if output_raw is not None:
            output = (
                ClassShares.from_dict(output_raw)
                if "classes" in output_raw
                else Histogram.from_dict(output_raw)
            )
        windows = raw.get("windows") or {}
        metrics = {str(k): float(v) for k, v in dict(raw.get("metrics") or {}).items()}
        if not all(math.isfinite(v) for v in metrics.values()):
            raise ValueError("metrics must be finite")
        return cls(
            model=str(raw["model"]),
            version=str(raw["version"]),
            task=task,
            features={
                str(name): Histogram.from_dict(h) for name, h in dict(raw["features"]).items()
            },
            output=output,
            metrics=metrics,
            training=Window.from_dict(windows.get("training")),
            validation=Window.from_dict(windows.get("validation")),
            rows=int(raw.get("rows", 0)),
            bins=int(raw.get("bins", DEFAULT_BINS)),
            created_at=str(raw.get("created_at", "")),
            source=dict(raw.get("source") or {}),
            # Absent from baselines fitted before calibration existed (or without labels).
            calibration=(
                None
                if raw.get("calibration") is None
                else Calibration.from_dict(raw["calibration"])
            ),
            ranges=None if raw.get("ranges") is None else Ranges.from_dict(raw["ranges"]),
        )

    def feature_ranges(self) -> Ranges | None:
        """The ranges the version keeps: fitted with the baseline, else estimated from its
        stored CDFs (a baseline fitted before ranges existed); None without features."""
        if self.ranges is not None:
            return self.ranges
        return estimate(self.features) if self.features else None


@dataclass(frozen=True)
class Reference:
    """A reference sample as the model saw it, with what it answered and, optionally, what
    was true. ``features``: rows x used features (NaN = missing)."""

    feature_names: Sequence[str]
    features: np.ndarray
    # classification: probabilities (rows x classes); regression: predicted values
    predictions: np.ndarray
    truth: Sequence[Any] | np.ndarray | None = None  # labels or values


def fit_baseline(
    model: str,
    version: str,
    task: Task,
    reference: Reference,
    *,
    classes: Sequence[str] = (),
    training: Window | None = None,
    validation: Window | None = None,
    bins: int = DEFAULT_BINS,
    created_at: str = "",
    source: Mapping[str, Any] | None = None,
    range_quantiles: Quantiles = DEFAULT_QUANTILES,
) -> Baseline:
    """Fit every histogram and range, and compute the validation metrics (when truth is
    given)."""
    if task not in TASKS:
        raise BaselineError(f"task must be one of {TASKS}")
    if not 2 <= bins <= 100:
        raise BaselineError("bins must be between 2 and 100")
    x = np.asarray(reference.features, dtype=np.float64)
    rows = x.shape[0]
    if x.ndim != 2 or x.shape[1] != len(reference.feature_names):
        raise BaselineError("the reference needs one column per feature")
    if rows == 0:
        raise BaselineError("the reference sample has no rows")
    features = {
        name: fit_histogram(x[:, j], bins) for j, name in enumerate(reference.feature_names)
    }
    try:
        ranges = fit_ranges(reference.feature_names, x, range_quantiles)
    except RangesError as exc:
        raise BaselineError(str(exc)) from None
    predictions = np.asarray(reference.predictions, dtype=np.float64)
    output: Output
    metrics: dict[str, float] = {}
    calibration: Calibration | None = None
    if task == "classification":
        if predictions.shape != (rows, len(classes)) or len(classes) < 2:
            raise BaselineError("classification needs one probability column per class")
        predicted = np.argmax(predictions, axis=1)
        counts = np.bincount(predicted, minlength=len(classes))
        output = ClassShares(list(classes), (counts / rows).tolist())
        if reference.truth is not None:
            metrics = _classification_metrics(list(classes), predictions, reference.truth)
            calibration = fit_calibration(predictions, _truth_index(list(classes), reference.truth))
    else:
        if predictions.shape != (rows,):
            raise BaselineError("regression needs one predicted value per row")
        output = fit_histogram(predictions, bins)
        if reference.truth is not None:
            truth = np.asarray(reference.truth, dtype=np.float64)
            if truth.shape != (rows,) or not np.all(np.isfinite(truth)):
                raise BaselineError("the value column must hold a finite number on every row")
            tally = RegressionTally()
            tally.add(truth, predictions)
            metrics = {k: float(v) for k, v in tally.metrics().items() if v is not None}
            metrics.pop("n", None)
    validation = validation or Window()
    if validation.samples is None:
        validation = Window(validation.start, validation.end, rows)
    return Baseline(
        model=model,
        version=version,
        task=task,
        features=features,
        output=output,
        metrics=metrics,
        training=training or Window(),
        validation=validation,
        rows=rows,
        bins=bins,
        created_at=created_at,
        source=dict(source or {}),
        calibration=calibration,
        ranges=ranges,
    )


def _truth_index(classes: list[str], truth: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Each label's class index; a label the model cannot output gets ``len(classes)``."""
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index.get(str(t), len(classes)) for t in truth], dtype=np.int64)


def _classification_metrics(
    classes: list[str], probabilities: np.ndarray, truth: Sequence[Any] | np.ndarray
) -> dict[str, float]:
    labels = [str(t) for t in truth]
    if len(labels) != probabilities.shape[0]:
        raise BaselineError("the label column must have one label per row")
    index = {c: i for i, c in enumerate(classes)}
    other = len(classes)
    truth_idx = np.array([index.get(t, other) for t in labels], dtype=np.int64)
    p_truth = np.full(len(labels), np.nan)
    known = truth_idx < other
    p_truth[known] = probabilities[np.flatnonzero(known), truth_idx[known]]
    p_truth[~known] = 0.0  # a label the model cannot output had probability 0
    tally = ClassificationTally(len(classes))
    tally.other_labels.update(t for t in labels if t not in index)
    tally.add(truth_idx, np.argmax(probabilities, axis=1), p_truth)
    return {k: float(v) for k, v in tally.metrics().items() if v is not None and k != "n"}


# -- seed 003 ------------------------------------------------------------------------------
SEED_003_FILES = ("validation_baseline.json", "dual_model_baseline.json")


def from_seed_003(
    model: str,
    version: str,
    which: str,
    validation_baseline: Mapping[str, Any] | None,
    dual_model_baseline: Mapping[str, Any] | None,
    *,
    reference: Baseline | None = None,
    created_at: str = "",
) -> Baseline:
    """A regression baseline for seed 003's Model A (``which="a"``, validated on the held-out
    10%) or Model B (``"b"``, tested on the last 30 samples): the seed's metrics and windows,
    plus the distributions of ``reference`` when one was fitted."""
    if which not in ("a", "b"):
        raise BaselineError("which must be 'a' (Model A) or 'b' (Model B)")
    dual = dict((dual_model_baseline or {}).get(f"model_{which}") or {})
    metrics: dict[str, float] = {}
    if which == "a":
        val = dict(validation_baseline or {})
        ranges = dict(val.get("date_range") or {})
        for name in ("rmse", "mae", "r2"):
            value = val.get(f"validation_{name}", dual.get(f"validation_{name}"))
            if value is not None:
                metrics[name] = float(value)
        training = Window(
            ranges.get("train_start", dual.get("training_date_start")),
            ranges.get("train_end", dual.get("training_date_end")),
            dual.get("training_samples"),
        )
        validation = Window(
            ranges.get("val_start"), ranges.get("val_end"), dual.get("validation_samples")
        )
    else:
        for name in ("rmse", "mae", "r2"):
            if dual.get(f"test_{name}") is not None:
                metrics[name] = float(dual[f"test_{name}"])
        training = Window(
            dual.get("training_date_start"),
            dual.get("training_date_end"),
            dual.get("training_samples"),
        )
        validation = Window(
            dual.get("test_date_start"), dual.get("test_date_end"), dual.get("test_samples")
        )
    if not metrics and reference is None:
        raise BaselineError(f"seed 003 baselines hold no metrics for Model {which.upper()}")
    if not metrics and reference is not None:  # the reference's own, when it had values
        metrics = dict(reference.metrics)
    source: dict[str, Any] = {
        "kind": "seed_003",
        "model": f"model_{which}",
        "files": list(SEED_003_FILES),
    }
    if reference is not None:
        if reference.task != "regression":
            raise BaselineError("seed 003's models are regressors")
        source["reference"] = reference.source
    return Baseline(
        model=model,
        version=version,
        task="regression",
        features=dict(reference.features) if reference else {},
        output=reference.output if reference else None,
        metrics=metrics,
        training=training,
        validation=validation,
        rows=reference.rows if reference else 0,
        bins=reference.bins if reference else DEFAULT_BINS,
        created_at=created_at,
        source=source,
        ranges=reference.ranges if reference else None,
    )
