"""One model's capture stream folded into fixed-size tallies, window by window.

Per window (a UTC day) and model it keeps: per-feature bin counts on the baseline's edges
(plus a missing bin) and counts at the baseline's CDF points; counts of the champion's
outputs; performance tallies for the champion and the challenger; the paired figures of
shadow rows (agreement, McNemar's discordant pairs, the Diebold-Mariano loss differential)
and the canary's own tallies. Nothing grows with the number of rows.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tickerserve.monitor.baseline import Baseline, ClassShares, Histogram
from tickerserve.monitor.metrics import ClassificationTally, RegressionTally, Tally, Task, new_tally
from tickerserve.monitor.moments import Moments
from tickerserve.monitor.outcomes import NO_LABEL, OutcomeIndex

SHADOW, CANARY = "shadow", "canary"


@dataclass(frozen=True)
class Subject:
    """What a run judges for one model: its champion (alias and version) and, when the
    registry or the capture names one, its challenger."""

    model: str
    task: Task
    champion_alias: str
    champion_version: str
    classes: list[str]
    feature_names: list[str]
    baseline: Baseline | None = None
    challenger_alias: str | None = None
    # alias -> version as the registry has them now (the challenger's version comes from here)
    aliases: dict[str, str] = field(default_factory=dict)


class _FeatureCounts:
    def __init__(self, hist: Histogram, windows: int) -> None:
        self.edges = np.asarray(hist.edges)
        self.points = np.asarray(hist.cdf_points)
        self.bins = np.zeros((windows, hist.n_bins + 1), dtype=np.int64)  # last: missing
        self.at_points = np.zeros((windows, self.points.size + 1), dtype=np.int64)

    def add(self, window: np.ndarray, values: np.ndarray) -> None:
        w, width = self.bins.shape
        missing = np.isnan(values)
        index = np.searchsorted(self.edges, values, side="right")
        index[missing] = width - 1
        self.bins += np.bincount(window * width + index, minlength=w * width).reshape(w, width)
        present = ~missing
        # position of the first CDF point >= x: x <= point_i exactly when position <= i
        pos = np.searchsorted(self.points, values[present], side="left")
        cols = self.at_points.shape[1]
        self.at_points += np.bincount(window[present] * cols + pos, minlength=w * cols).reshape(
            w, cols
        )


class _Pairs:
    """Champion and challenger on the same rows (shadow), one window."""

    def __init__(self, task: Task, n_classes: int) -> None:
        self.rows = 0
        self.agree = 0
        self.champion: Tally = new_tally(task, n_classes)
        self.challenger: Tally = new_tally(task, n_classes)
        self.champion_only = 0  # McNemar's b: only the champion right
        self.challenger_only = 0  # McNemar's c: only the challenger right
        self.differential = Moments()  # d = e_champion^2 - e_challenger^2


class ModelStream:
    """Tallies of one model over a run's windows."""

    def __init__(
        self,
        subject: Subject,
        windows: Sequence[str],
        outcomes: OutcomeIndex,
        *,
        agreement_tolerance: float = 0.1,
    ) -> None:
        self.subject = subject
        self.windows = list(windows)
        self._window_index = {day: i for i, day in enumerate(self.windows)}
        self.outcomes = outcomes
        self.tolerance = agreement_tolerance
        w = len(self.windows)
        self.task = subject.task
        self.classes = list(subject.classes)
        self._class_index = {c: i for i, c in enumerate(self.classes)}
        n_classes = len(self.classes)
        self.rows = np.zeros(w, dtype=np.int64)
        self.other_versions = 0  # rows answered by versions the aliases no longer name
        self.malformed = 0
        baseline = subject.baseline
        self.features: dict[str, _FeatureCounts] = {}
        if baseline is not None:
            self.features = {
                name: _FeatureCounts(hist, w)
                for name, hist in baseline.features.items()
                if name in set(subject.feature_names)
            }
        self._feature_names = list(self.features)
        self.output_hist = (
            baseline.output if baseline and isinstance(baseline.output, Histogram) else None
        )
        self.output_counts = np.zeros(
            (w, n_classes if self.task == "classification" else
             (self.output_hist.n_bins + 1 if self.output_hist else 1)), dtype=np.int64,
        )  # fmt: skip
        self.champion_rows = np.zeros(w, dtype=np.int64)  # rows with a champion output
        self.sampled_rows = np.zeros(w, dtype=np.int64)  # ... in the outcome sample
        self.champion = [new_tally(self.task, n_classes) for _ in range(w)]
        self.canary = [new_tally(self.task, n_classes) for _ in range(w)]
        self.canary_rows = np.zeros(w, dtype=np.int64)
        self.pairs = [_Pairs(self.task, n_classes) for _ in range(w)]
        self.challenger_alias = subject.challenger_alias
        self._label_map: np.ndarray | None = None

    # -- who answered --------------------------------------------------------------------
    @property
    def challenger_version(self) -> str | None:
        if self.challenger_alias is None:
            return None
        return self.subject.aliases.get(self.challenger_alias)

    def _adopt_challenger(self, records: list[dict[str, Any]]) -> None:
        """Without a configured shadow or canary, the first challenger alias the capture
        shows (other than the champion's) is the one judged."""
        for r in records:
            if r.get("role") == "canary" and isinstance(r.get("alias"), str):
                alias = r["alias"]
            else:
                found = [c.get("alias") for c in r.get("challengers") or () if isinstance(c, dict)]
                alias = next((a for a in found if isinstance(a, str)), None)
            if alias and alias != self.subject.champion_alias and alias in self.subject.aliases:
                self.challenger_alias = alias
                return

    # -- folding a batch -------------------------------------------------------------------
    def add(self, records: list[dict[str, Any]]) -> int:
        """Fold a batch of this model's capture records; returns how many fell outside the
        run's windows."""
        get = self._window_index.get
        window = np.fromiter((get(r["time"][:10], -1) for r in records), np.int64, len(records))
        inside = window >= 0
        outside = int((~inside).sum())
        if outside:
            records = [r for r, keep in zip(records, inside, strict=True) if keep]
            window = window[inside]
        if not records:
            return outside
        if self.challenger_alias is None:
            self._adopt_challenger(records)
        self.rows += np.bincount(window, minlength=len(self.windows))
        if self.features:
            self._add_features(window, records)
        self._add_outputs(window, records)
        return outside

    def _add_features(self, window: np.ndarray, records: list[dict[str, Any]]) -> None:
        names = self._feature_names
        rows: list[Any] = [r.get("features") for r in records]
        # One C-level lookup of every name per row; a row missing a name (or not a dict)
        # takes the slow path, as does a batch holding a non-number.
        pick = operator.itemgetter(*names) if len(names) > 1 else (lambda f: (f[names[0]],))
        try:
            matrix = np.array([pick(f) for f in rows], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            matrix = np.array([[_number(f, n) for n in names] for f in rows], dtype=np.float64)
        for j, name in enumerate(names):
            self.features[name].add(window, matrix[:, j])

    def _outputs(self, records: list[dict[str, Any]]) -> tuple[list[Any], list[Any], np.ndarray]:
        """Each row's champion output and challenger output (None where absent), and
        whether the champion served it."""
        champ_v, champ_a = self.subject.champion_version, self.subject.champion_alias
        chall_v, chall_a = self.challenger_version, self.challenger_alias
        champion: list[Any] = []
        challenger: list[Any] = []
        served = np.zeros(len(records), dtype=bool)
        for i, r in enumerate(records):
            role, version = r.get("role"), r.get("version")
            mine = theirs = None
            if role == "champion" and version == champ_v:
                mine, served[i] = r.get("output"), True
                if chall_a is not None:
                    theirs = _scored_by(r, chall_a, chall_v)
            elif role == "canary" and chall_v is not None and version == chall_v:
                theirs = r.get("output")
                mine = _scored_by(r, champ_a, champ_v)
                self.canary_rows[self._window_index[r["time"][:10]]] += 1
            else:
                self.other_versions += 1
            champion.append(mine)
            challenger.append(theirs)
        return champion, challenger, served

    def _predictions(self, outputs: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """(valid, prediction): class index or value per row."""
        if self.task == "classification":
            index: dict[Any, int] = dict(self._class_index)
            pred = np.fromiter(
                (index.get(_label(o), -1) for o in outputs),
                np.int64, len(outputs),
            )  # fmt: skip
            return pred >= 0, pred
        values = np.fromiter((_value(o) for o in outputs), np.float64, len(outputs))
        return np.isfinite(values), values

    def _truth(self, codes: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.task == "regression":
            return np.isfinite(values), values
        if self._label_map is None or self._label_map.size != len(self.outcomes.labels):
            other = len(self.classes)
            self._label_map = np.array(
                [self._class_index.get(label, other) for label in self.outcomes.labels],
                dtype=np.int64,
            )
        has = codes != NO_LABEL
        truth = np.zeros(codes.size, dtype=np.int64)
        if self._label_map.size:
            truth[has] = self._label_map[codes[has]]
        return has, truth

    def _add_outputs(self, window: np.ndarray, records: list[dict[str, Any]]) -> None:
        w = len(self.windows)
        champion_out, challenger_out, served = self._outputs(records)
        ok_a, pred_a = self._predictions(champion_out)
        ok_b, pred_b = self._predictions(challenger_out)
        shown = served & ok_a
        if self.task == "classification":
            cols = self.output_counts.shape[1]
            self.output_counts += np.bincount(
                window[shown] * cols + pred_a[shown], minlength=w * cols
            ).reshape(w, cols)
        elif self.output_hist is not None:
            cols = self.output_counts.shape[1]
            idx = np.searchsorted(np.asarray(self.output_hist.edges), pred_a, side="right")
            idx[~ok_a] = cols - 1
            self.output_counts += np.bincount(
                window[served] * cols + idx[served], minlength=w * cols
            ).reshape(w, cols)
        sampled, found, codes, values = self.outcomes.lookup([r.get("request_id") for r in records])
        has_truth, truth = self._truth(codes, values)
        scored = sampled & found & has_truth
        self.champion_rows += np.bincount(window[ok_a], minlength=w)
        self.sampled_rows += np.bincount(window[ok_a & sampled], minlength=w)
        paired = ok_a & ok_b
        if self.task == "classification":
            agree = paired & (pred_a == pred_b)
        else:
            gap = np.abs(pred_a - pred_b)
            agree = paired & (gap <= self.tolerance * np.maximum(np.abs(pred_a), np.abs(pred_b)))
        canary = ok_b & ~served & scored
        p_a = p_b = None
        if self.task == "classification":
            labels = self.outcomes.labels
            p_a = _p_truth(champion_out, codes, labels, ok_a & scored)
            p_b = _p_truth(challenger_out, codes, labels, ok_b & scored)
        for wi in np.unique(window):
            here = window == wi
            sel = here & ok_a & scored
            _add(self.champion[wi], truth[sel], pred_a[sel], None if p_a is None else p_a[sel])
            sel = here & canary
            _add(self.canary[wi], truth[sel], pred_b[sel], None if p_b is None else p_b[sel])
            pairs = self.pairs[wi]
            pairs.rows += int((here & paired).sum())
            pairs.agree += int((here & agree).sum())
            sel = here & paired & scored
            if not sel.any():
                continue
            t, a, b = truth[sel], pred_a[sel], pred_b[sel]
            _add(pairs.champion, t, a, None if p_a is None else p_a[sel])
            _add(pairs.challenger, t, b, None if p_b is None else p_b[sel])
            if self.task == "classification":
                right_a, right_b = a == t, b == t
                pairs.champion_only += int((right_a & ~right_b).sum())
                pairs.challenger_only += int((right_b & ~right_a).sum())
            else:
                pairs.differential.add((a - t) ** 2 - (b - t) ** 2)


def _add(tally: Tally, truth: np.ndarray, pred: np.ndarray, p_truth: np.ndarray | None) -> None:
    if truth.size == 0:
        return
    if isinstance(tally, ClassificationTally):
        tally.add(truth, pred, p_truth)
    else:
        assert isinstance(tally, RegressionTally)
        tally.add(truth.astype(np.float64), pred)


def _scored_by(record: dict[str, Any], alias: str | None, version: str | None) -> Any:
    for entry in record.get("challengers") or ():
        if (
            isinstance(entry, dict)
            and entry.get("alias") == alias
            and entry.get("version") == version
            and "error" not in entry
        ):
            return entry.get("output")
    return None


def _label(output: Any) -> str | None:
    label = output.get("label") if isinstance(output, dict) else None
    return label if isinstance(label, str) else None


def _value(output: Any) -> float:
    if not isinstance(output, dict):
        return np.nan
    value = output.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return np.nan
    return float(value)


def _number(features: Any, name: str) -> float:
    if not isinstance(features, dict):
        return np.nan
    value = features.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return np.nan
    return float(value)


def _p_truth(
    outputs: list[Any], codes: np.ndarray, labels: list[str], rows: np.ndarray
) -> np.ndarray:
    """Each scored row's probability of its true label (NaN where the output gave none)."""
    p = np.full(len(outputs), np.nan)
    picked = np.flatnonzero(rows)
    p[picked] = [
        _probability(outputs[i], labels[c]) for i, c in zip(picked, codes[picked], strict=True)
    ]
    return p


def _probability(output: dict[str, Any], label: str) -> float:
    try:
        value = output["probabilities"].get(label, 0.0)
        return np.nan if isinstance(value, bool) else float(value)
    except (KeyError, AttributeError, TypeError, ValueError):
        return np.nan


def class_shares_expected(shares: ClassShares, classes: list[str]) -> np.ndarray:
    """The baseline's output proportions in ``classes`` order (0 for a class it lacks)."""
    lookup = dict(zip(shares.classes, shares.proportions, strict=True))
    return np.array([lookup.get(c, 0.0) for c in classes])
