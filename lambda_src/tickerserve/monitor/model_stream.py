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
from typing import Any, Literal, NamedTuple

import numpy as np

from tickerserve.baselines.baseline import Baseline, ClassShares, Histogram
from tickerserve.baselines.metrics import (
    ClassificationTally,
    RegressionTally,
    Tally,
    Task,
    new_tally,
)
from tickerserve.baselines.moments import Moments
from tickerserve.monitor.config import DEFAULTS
from tickerserve.monitor.outcome_join import NO_LABEL, OutcomeIndex

Mode = Literal["shadow", "canary"]
# How a challenger is compared: it scored the champion's rows beside it (shadow), or it
# answered a share of the requests itself (canary).
SHADOW: Mode = "shadow"
CANARY: Mode = "canary"


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
    policy: bool = False  # a policy: its outputs are actions (classes: discrete; values: box)


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


class _Chunk(NamedTuple):
    """A batch of one model's rows as columns, ready to fold (rows outside the run dropped)."""

    window: np.ndarray  # int64 window index
    served: np.ndarray  # the champion answered (its version): its output is the answer
    canary: np.ndarray  # the challenger answered as canary
    ok_a: np.ndarray  # the champion's output is known (served, or scored beside a canary)
    pred_a: np.ndarray  # class index (int64) or value (float64)
    ok_b: np.ndarray  # the challenger's output is known
    pred_b: np.ndarray
    sampled: np.ndarray  # the request id is in the outcome sample
    scored: np.ndarray  # ... and its outcome has arrived, with a truth for this task
    truth: np.ndarray  # class index (n_classes: a label the model cannot output) or value
    p_a: np.ndarray | None  # classification: each row's probability of its true label
    p_b: np.ndarray | None
    features: np.ndarray | None  # features x rows (NaN: missing)


# The capture fields a row is judged on, looked up in C for a whole batch at once.
_FIELDS = operator.itemgetter("time", "role", "version", "request_id", "output", "challengers")
_FIELD_NAMES = ("time", "role", "version", "request_id", "output", "challengers")


class ModelStream:
    """Tallies of one model over a run's windows.

    ``add`` turns a batch of capture records into columns (the only per-row Python work);
    ``fold`` adds the pending columns to the tallies with numpy, many batches at a time (the
    run folds when the pending columns reach a fixed size, and at the end).
    """

    def __init__(
        self,
        subject: Subject,
        windows: Sequence[str],
        outcomes: OutcomeIndex,
        *,
        agreement_tolerance: float = DEFAULTS.agreement_tolerance,
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
        baseline = subject.baseline
        self.features: dict[str, _FeatureCounts] = {}
        if baseline is not None:
            self.features = {
                name: _FeatureCounts(hist, w)
                for name, hist in baseline.features.items()
                if name in set(subject.feature_names)
            }
        self._feature_names = list(self.features)
        names = self._feature_names
        self._pick_features = (
            operator.itemgetter(*names) if len(names) > 1 else (lambda f: (f[names[0]],))
        )
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
        self._pending: list[_Chunk] = []
        self.pending_cells = 0  # what the pending columns hold, in numbers

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
                entries = r.get("challengers")
                found = [c.get("alias") for c in entries or () if isinstance(c, dict)]
                alias = next((a for a in found if isinstance(a, str)), None)
            if alias and alias != self.subject.champion_alias and alias in self.subject.aliases:
                self.challenger_alias = alias
                return

    # -- a batch into columns ------------------------------------------------------------
    def add(self, records: list[dict[str, Any]]) -> int:
        """Take a batch of this model's capture records (each a dict whose ``time`` is a
        string); returns how many fell outside the run's windows."""
        if not records:
            return 0
        n = len(records)
        columns: list[Sequence[Any]]
        try:
            columns = list(zip(*map(_FIELDS, records), strict=True))
        except (KeyError, TypeError):  # a record lacks a field: look each up with a default
            columns = [[r.get(f) for r in records] for f in _FIELD_NAMES]
        times, roles, versions, ids, outputs, challengers = columns
        get = self._window_index.get
        window = np.fromiter((get(t[:10], -1) for t in times), np.int64, n)
        inside = window >= 0
        outside = n - int(inside.sum())
        if outside:
            keep = np.flatnonzero(inside).tolist()
            records = [records[i] for i in keep]
            times, roles, versions, ids, outputs, challengers = (
                [column[i] for i in keep] for column in columns
            )
            window = window[inside]
            n = len(records)
            if not n:
                return outside
        if self.challenger_alias is None:
            self._adopt_challenger(records)
        chunk = self._columns(window, roles, versions, ids, outputs, challengers, records)
        self._pending.append(chunk)
        self.pending_cells += n * (len(self._feature_names) + 12)
        return outside

    def _columns(
        self,
        window: np.ndarray,
        roles: Sequence[Any],
        versions: Sequence[Any],
        ids: Sequence[Any],
        outputs: Sequence[Any],
        challengers: Sequence[Any],
        records: list[dict[str, Any]],
    ) -> _Chunk:
        n = window.size
        champ_v, champ_a = self.subject.champion_version, self.subject.champion_alias
        chall_v, chall_a = self.challenger_version, self.challenger_alias
        role = np.fromiter(roles, object, n)
        version = np.fromiter(versions, object, n)
        served = (role == "champion") & (version == champ_v)
        canary = np.zeros(n, dtype=bool)
        if chall_v is not None:
            canary = (role == "canary") & (version == chall_v)
        self.other_versions += n - int(served.sum()) - int(canary.sum())
        # The champion's output: the answer where it served, else (canary rows) the one it
        # gave as a challenger; the challenger's likewise the other way round.
        served_rows, canary_rows = served.tolist(), canary.tolist()
        mine = [
            o if s else (_scored_by(c, champ_a, champ_v) if k else None)
            for o, s, k, c in zip(outputs, served_rows, canary_rows, challengers, strict=True)
        ]
        theirs: list[Any] = [None] * n
        if chall_a is not None:
            theirs = [
                _scored_by(c, chall_a, chall_v) if s else (o if k else None)
                for o, s, k, c in zip(outputs, served_rows, canary_rows, challengers, strict=True)
            ]
        ok_a, pred_a = self._predictions(mine)
        ok_b, pred_b = self._predictions(theirs)
        sampled, found, codes, values = self.outcomes.lookup(ids)
        has_truth, truth = self._truth(codes, values)
        scored = sampled & found & has_truth
        p_a = p_b = None
        if self.task == "classification":
            labels = self.outcomes.labels
            p_a = _p_truth(mine, codes, labels, ok_a & scored)
            p_b = _p_truth(theirs, codes, labels, ok_b & scored)
        features = self._feature_matrix(records) if self._feature_names else None
        return _Chunk(window, served, canary, ok_a, pred_a, ok_b, pred_b, sampled, scored,
                      truth, p_a, p_b, features)  # fmt: skip

    def _feature_matrix(self, records: list[dict[str, Any]]) -> np.ndarray:
        """features x rows. One C-level lookup of every name per row; a batch with a row
        missing a name (or not a dict), or holding a non-number, takes the slow path."""
        pick = self._pick_features
        try:
            matrix = np.array([pick(r["features"]) for r in records], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            names = self._feature_names
            matrix = np.array(
                [[_number(r.get("features"), name) for name in names] for r in records],
                dtype=np.float64,
            )
        return np.ascontiguousarray(matrix.T)

    def _predictions(self, outputs: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """(valid, prediction): class index or value per row."""
        n = len(outputs)
        if self.task == "classification":
            index: dict[Any, int] = self._class_index
            try:
                pred = np.fromiter(
                    (index.get(o.get("label"), -1) if type(o) is dict else -1 for o in outputs),
                    np.int64, n,
                )  # fmt: skip
            except TypeError:  # an unhashable label
                pred = np.fromiter((index.get(_label(o), -1) for o in outputs), np.int64, n)
            return pred >= 0, pred
        values = np.fromiter((_value(o) for o in outputs), np.float64, n)
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

    # -- folding columns into tallies ------------------------------------------------------
    def fold(self) -> None:
        """Add every pending batch to the tallies."""
        if not self._pending:
            return
        parts = self._pending
        self._pending, self.pending_cells = [], 0
        if len(parts) == 1:
            c = parts[0]
        else:
            c = _Chunk._make(
                None if parts[0][i] is None else np.concatenate([p[i] for p in parts], axis=-1)
                for i in range(len(_Chunk._fields))
            )
        w = len(self.windows)
        window = c.window
        self.rows += np.bincount(window, minlength=w)
        self.canary_rows += np.bincount(window[c.canary], minlength=w)
        if c.features is not None:
            for j, name in enumerate(self._feature_names):
                self.features[name].add(window, c.features[j])
        self._fold_outputs(c)

    def _fold_outputs(self, c: _Chunk) -> None:
        w = len(self.windows)
        window, served, ok_a, pred_a, ok_b, pred_b = (
            c.window, c.served, c.ok_a, c.pred_a, c.ok_b, c.pred_b,
        )  # fmt: skip
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
        scored, truth, p_a, p_b = c.scored, c.truth, c.p_a, c.p_b
        self.champion_rows += np.bincount(window[ok_a], minlength=w)
        self.sampled_rows += np.bincount(window[ok_a & c.sampled], minlength=w)
        paired = ok_a & ok_b
        if self.task == "classification":
            agree = paired & (pred_a == pred_b)
        else:
            gap = np.abs(pred_a - pred_b)
            agree = paired & (gap <= self.tolerance * np.maximum(np.abs(pred_a), np.abs(pred_b)))
        canary = ok_b & ~served & scored
        paired_rows = np.bincount(window[paired], minlength=w)
        agreed = np.bincount(window[agree], minlength=w)
        for wi in np.unique(window).tolist():
            here = window == wi
            sel = here & ok_a & scored
            _add(self.champion[wi], truth[sel], pred_a[sel], None if p_a is None else p_a[sel])
            sel = here & canary
            _add(self.canary[wi], truth[sel], pred_b[sel], None if p_b is None else p_b[sel])
            pairs = self.pairs[wi]
            pairs.rows += int(paired_rows[wi])
            pairs.agree += int(agreed[wi])
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


def _scored_by(entries: Any, alias: str | None, version: str | None) -> Any:
    if type(entries) is not list:
        return None
    for entry in entries:
        if (
            type(entry) is dict
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
    if type(output) is not dict:
        return np.nan
    value = output.get("value")
    if type(value) is float or type(value) is int:
        return float(value)
    return np.nan


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
    if not picked.size:
        return p
    pairs = list(zip(picked.tolist(), codes[picked].tolist(), strict=True))
    try:
        found = [outputs[i]["probabilities"].get(labels[c], 0.0) for i, c in pairs]
        if bool in set(map(type, found)):  # true/false is no probability (NaN, as below)
            raise TypeError
        p[picked] = found
    except (KeyError, AttributeError, TypeError, ValueError):
        p[picked] = [_probability(outputs[i], labels[c]) for i, c in pairs]
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
