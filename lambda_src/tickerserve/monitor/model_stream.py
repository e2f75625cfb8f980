"""One model's capture stream folded into fixed-size tallies, window by window.

Per window (a UTC day) and model it keeps: per-feature bin counts on the baseline's edges
(plus a missing bin) and counts at the baseline's CDF points; counts of the champion's
outputs and of its confidence on the baseline's calibration bins; performance tallies for the
champion and the challenger; the paired figures of shadow rows (agreement, McNemar's
discordant pairs, the Diebold-Mariano loss differential) and the canary's own tallies; over
the run, the warnings the answers carried (issue 21), per feature the model uses and code,
and the rows answered per signal (issue 14: a record captured before signals counts on the
contract's default signal, as a registry without signals routes everything there).

Two moments. While capture is read, everything that needs no outcome is folded at once, and
each row that is evidence (an output of either side, a request id) keeps a few numbers: its
salted request key, window, who answered, both predictions (and, for classifiers, both
probability vectors). The run then reads only the outcomes of those keys
(``outcome_join``) and ``judge`` folds the performance tallies. Memory grows with the captured
evidence, never with outcomes, and is capped by a ``Sampler`` shared by the run's streams:
past its capacity it keeps the rows whose salted key falls in a sample.

Only what was served is evidence: a champion row counts when the champion alias answered it
(a caller who pins a version or another alias gets an answer, not a vote), a canary row when
the canary answered it, a shadow output when it was scored beside one of those. A request id
seen twice counts once (``keep_first``), and an outcome must fit the task: a classifier reads
labels, a regressor values.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np

from tickerserve.baselines.baseline import Baseline, ClassShares, Histogram
from tickerserve.baselines.calibration import Calibration
from tickerserve.baselines.metrics import (
    ClassificationTally,
    RegressionTally,
    Tally,
    Task,
    new_tally,
)
from tickerserve.baselines.moments import Moments
from tickerserve.contract import DEFAULT_SIGNAL, NAMES, WARNINGS
from tickerserve.monitor.config import DEFAULTS
from tickerserve.monitor.outcome_join import NO_KEY, KeyHasher, OutcomeIndex, in_sample

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


class Sampler:
    """Which captured rows a run keeps for joining outcomes: every one up to ``capacity``
    rows over all of the run's streams, then only rows whose salted key has its lowest
    ``bits`` bits zero (the same rule for every stream, so the sample rate is one number)."""

    def __init__(self, hasher: KeyHasher, capacity: int = DEFAULTS.outcome_capacity) -> None:
        self.hasher = hasher
        self.capacity = capacity
        self.bits = 0
        self.rows = 0
        self.batches = 0  # evidence batches handed out, in read order over all streams
        self.streams: list[ModelStream] = []

    @property
    def rate(self) -> float:
        return 1.0 / (1 << self.bits)

    def next_batch(self) -> int:
        self.batches += 1
        return self.batches

    def kept(self, added: int) -> None:
        """Count rows a stream kept; past the capacity, halve the sample until it fits."""
        self.rows += added
        while self.rows > self.capacity:
            self.bits += 1
            self.rows = sum(stream.thin(self.bits) for stream in self.streams)


class _Chunk(NamedTuple):
    """A batch of one model's rows as columns, folded without outcomes."""

    window: np.ndarray  # int64 window index
    served: np.ndarray  # the champion alias answered: its output is the answer
    canary: np.ndarray  # the challenger answered as canary
    ok_a: np.ndarray  # the champion's output is known (served, or scored beside a canary)
    pred_a: np.ndarray  # class index (int64) or value (float64)
    ok_b: np.ndarray  # the challenger's output is known
    pred_b: np.ndarray
    confidence: np.ndarray | None  # served rows' top probability (NaN: none given)
    features: np.ndarray | None  # features x rows (NaN: missing)


class _Evidence(NamedTuple):
    """The rows of a batch that outcomes may judge, a few numbers each, kept until the
    outcomes are read."""

    key: np.ndarray  # the salted request key (uint64)
    window: np.ndarray
    served: np.ndarray
    canary: np.ndarray
    ok_a: np.ndarray
    pred_a: np.ndarray
    ok_b: np.ndarray
    pred_b: np.ndarray
    prob_a: np.ndarray | None  # classification: rows x classes (float32; NaN: not given)
    prob_b: np.ndarray | None


# A batch handed to ``add`` holds at most this many rows (far above the reader's batches):
# a row's place in the read order is (batch number << _ROW_BITS) + its index.
_ROW_BITS = 24

# An answer's warning codes, each a column of the per-feature warning counts.
WARNING_CODES: tuple[str, ...] = (WARNINGS.out_of_range, WARNINGS.unexpected_missing)
_WARNING_COLUMN = {code: i for i, code in enumerate(WARNING_CODES)}

# The capture fields a row is judged on, looked up in C for a whole batch at once.
_FIELD_NAMES = ("time", "role", "version", "alias", "request_id", "output", "challengers")
_FIELDS = operator.itemgetter(*_FIELD_NAMES)


@dataclass
class JoinCounts:
    """What joining one model's rows to outcomes found, besides the tallies."""

    evidence_rows: int = 0  # rows kept for the join (after the sample)
    repeated_ids: int = 0  # rows whose request id an earlier row already carried
    wrong_task: int = 0  # rows whose id has only an outcome of the other kind
    corrected: int = 0  # scored rows whose outcome was corrected after it first arrived


class ModelStream:
    """Tallies of one model over a run's windows.

    ``add`` turns a batch of capture records into columns (the only per-row Python work);
    ``fold`` adds the pending columns to the tallies with numpy, many batches at a time (the
    run folds when the pending columns reach a fixed size, and at the end); ``judge`` folds
    the kept evidence against the outcomes once they are read.
    """

    def __init__(
        self,
        subject: Subject,
        windows: Sequence[str],
        sampler: Sampler,
        *,
        agreement_tolerance: float = DEFAULTS.agreement_tolerance,
    ) -> None:
        self.subject = subject
        self.windows = list(windows)
        self._window_index = {day: i for i, day in enumerate(self.windows)}
        self.sampler = sampler
        sampler.streams.append(self)
        self.tolerance = agreement_tolerance
        w = len(self.windows)
        self.task = subject.task
        self.classes = list(subject.classes)
        self._class_index = {c: i for i, c in enumerate(self.classes)}
        self._pick_probabilities = (
            operator.itemgetter(*self.classes) if len(self.classes) > 1 else None
        )
        n_classes = len(self.classes)
        self.rows = np.zeros(w, dtype=np.int64)
        self.other_versions = 0  # rows answered by versions the aliases no longer name
        self.pinned_rows = 0  # the champion's version, asked for by version or another alias
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
        # The champion's confidence on its baseline's calibration bins (performance estimated
        # before outcomes arrive); None without a calibrated classifier baseline.
        self.calibration: Calibration | None = baseline.calibration if baseline else None
        self.confidence_counts: np.ndarray | None = None
        if self.calibration is not None and self.task == "classification":
            bins = len(self.calibration.rows)
            self.confidence_counts = np.zeros((w, bins), dtype=np.int64)
        self.champion_rows = np.zeros(w, dtype=np.int64)  # rows with a champion output
        self.sampled_rows = np.zeros(w, dtype=np.int64)  # ... kept for the join (judged)
        self.champion = [new_tally(self.task, n_classes) for _ in range(w)]
        self.canary = [new_tally(self.task, n_classes) for _ in range(w)]
        self.canary_rows = np.zeros(w, dtype=np.int64)
        self.pairs = [_Pairs(self.task, n_classes) for _ in range(w)]
        self.challenger_alias = subject.challenger_alias
        self.joined = JoinCounts()
        # Warnings over the run: rows whose answer was checked (its version had ranges), rows
        # with a warning, and per used feature a count per code (WARNING_CODES' order).
        self.checked_rows = 0
        self.warned_rows = 0
        self.warnings: dict[str, list[int]] = {}
        self._warnable = frozenset(subject.feature_names)
        # Rows answered per signal over the run (what the model serves: ``strategy``,
        # ``volatility``...).
        self.signals: Counter[str] = Counter()
        self._pending: list[_Chunk] = []
        self._evidence: list[tuple[int, _Evidence]] = []  # (batch number, rows)
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
        times, roles, versions, aliases, ids, outputs, challengers = columns
        get = self._window_index.get
        window = np.fromiter((get(t[:10], -1) for t in times), np.int64, n)
        inside = window >= 0
        outside = n - int(inside.sum())
        if outside:
            keep = np.flatnonzero(inside).tolist()
            records = [records[i] for i in keep]
            roles, versions, aliases, ids, outputs, challengers = (
                [column[i] for i in keep] for column in columns[1:]
            )
            window = window[inside]
            n = len(records)
            if not n:
                return outside
        if self.challenger_alias is None:
            self._adopt_challenger(records)
        self._count_warnings(records)
        self._count_signals(records)
        self._columns(window, roles, versions, aliases, ids, outputs, challengers, records)
        self.pending_cells += n * (len(self._feature_names) + 12)
        return outside

    def _count_signals(self, records: list[dict[str, Any]]) -> None:
        """Tally the signal each row answered for (absent: the default signal; a value that
        is no signal name, which our capture never writes, is not counted)."""
        found = Counter(r.get("signal") for r in records)
        for signal, n in found.items():
            if signal is None:
                self.signals[DEFAULT_SIGNAL] += n
                continue
            try:
                self.signals[NAMES["signal"].check(signal)] += n
            except ValueError:
                continue

    def _count_warnings(self, records: list[dict[str, Any]]) -> None:
        """Tally the answers' warnings (a record without the key was not checked; parts that
        are not a warning about a feature the model uses are skipped)."""
        counts, warnable = self.warnings, self._warnable
        for record in records:
            found = record.get("warnings")
            if type(found) is not list:
                continue
            self.checked_rows += 1
            if not found:
                continue
            self.warned_rows += 1
            for warning in found:
                if type(warning) is not dict:
                    continue
                feature, code = warning.get("feature"), warning.get("code")
                if type(feature) is not str or type(code) is not str or feature not in warnable:
                    continue
                column = _WARNING_COLUMN.get(code)
                if column is None:
                    continue
                tally = counts.get(feature)
                if tally is None:
                    tally = counts[feature] = [0] * len(WARNING_CODES)
                tally[column] += 1

    def _columns(
        self,
        window: np.ndarray,
        roles: Sequence[Any],
        versions: Sequence[Any],
        aliases: Sequence[Any],
        ids: Sequence[Any],
        outputs: Sequence[Any],
        challengers: Sequence[Any],
        records: list[dict[str, Any]],
    ) -> None:
        n = window.size
        champ_v, champ_a = self.subject.champion_version, self.subject.champion_alias
        chall_v, chall_a = self.challenger_version, self.challenger_alias
        role = np.fromiter(roles, object, n)
        version = np.fromiter(versions, object, n)
        alias = np.fromiter(aliases, object, n)
        champion_version = (role == "champion") & (version == champ_v)
        # Served through the champion alias: a pinned version (alias null) or another alias
        # pinned to the same version answers the caller but is no evidence.
        served = champion_version & (alias == champ_a)
        self.pinned_rows += int(champion_version.sum() - served.sum())
        canary = np.zeros(n, dtype=bool)
        if chall_v is not None and chall_a is not None:
            canary = (role == "canary") & (version == chall_v) & (alias == chall_a)
        self.other_versions += n - int(champion_version.sum()) - int(canary.sum())
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
        prob_a = prob_b = None
        if self.task == "classification":
            prob_a = self._probabilities(mine, ok_a)
            prob_b = self._probabilities(theirs, ok_b)
        confidence = None
        if self.confidence_counts is not None and prob_a is not None:
            with np.errstate(invalid="ignore"):
                confidence = np.where(served & ok_a, np.max(prob_a, axis=1), np.nan)
        features = self._feature_matrix(records) if self._feature_names else None
        self._pending.append(
            _Chunk(window, served, canary, ok_a, pred_a, ok_b, pred_b, confidence, features)
        )
        keys = self.sampler.hasher.keys(ids)
        evidence = (keys != NO_KEY) & (ok_a | ok_b) & (served | canary)
        evidence &= in_sample(keys, self.sampler.bits)
        if evidence.any():
            pick = np.flatnonzero(evidence)
            self._evidence.append((self.sampler.next_batch(), _Evidence(
                    keys[pick], window[pick].astype(np.int32), served[pick], canary[pick],
                    ok_a[pick], pred_a[pick], ok_b[pick], pred_b[pick],
                    None if prob_a is None else prob_a[pick],
                    None if prob_b is None else prob_b[pick],
            )))  # fmt: skip
            self.sampler.kept(int(pick.size))

    def thin(self, bits: int) -> int:
        """Keep only evidence in the sample of ``bits``; returns the rows left."""
        kept = [(n, _rows(part, in_sample(part.key, bits))) for n, part in self._evidence]
        self._evidence = [(n, part) for n, part in kept if part.key.size]
        return sum(part.key.size for _, part in self._evidence)

    def _feature_matrix(self, records: list[dict[str, Any]]) -> np.ndarray:
        """features x rows. One C-level lookup of every name per row; a batch with a row
        missing a name (or not a dict), or holding a non-number, takes the slow path."""
        pick = self._pick_features
        try:
            matrix = np.array([pick(r["features"]) for r in records], dtype=np.float64)
        except (KeyError, TypeError, ValueError, OverflowError):
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

    def _probabilities(self, outputs: list[Any], ok: np.ndarray) -> np.ndarray:
        """rows x classes, float32; NaN where an output gave no probability for a class. One
        C-level lookup per row; a batch with any odd row takes the slow path."""
        n, width = len(outputs), len(self.classes)
        probabilities = np.full((n, width), np.nan, dtype=np.float32)
        rows = np.flatnonzero(ok).tolist()
        if not rows:
            return probabilities
        pick = self._pick_probabilities
        try:
            if pick is None:
                raise TypeError
            found = np.array([pick(outputs[i]["probabilities"]) for i in rows], dtype=np.float64)
            if found.shape != (len(rows), width):
                raise TypeError
            probabilities[rows] = found
        except (KeyError, TypeError, ValueError, OverflowError):
            probabilities[rows] = [
                [_probability(outputs[i], label) for label in self.classes] for i in rows
            ]
        return probabilities

    # -- folding columns into tallies ------------------------------------------------------
    def fold(self) -> None:
        """Add every pending batch to the tallies that need no outcome."""
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
        if self.confidence_counts is not None and c.confidence is not None:
            assert self.calibration is not None
            known = ~np.isnan(c.confidence)
            bins = self.calibration.bin_of(c.confidence[known])
            cols = self.confidence_counts.shape[1]
            self.confidence_counts += np.bincount(
                window[known] * cols + bins, minlength=w * cols
            ).reshape(w, cols)
        self.champion_rows += np.bincount(window[ok_a], minlength=w)
        paired = ok_a & ok_b
        if self.task == "classification":
            agree = paired & (pred_a == pred_b)
        else:
            gap = np.abs(pred_a - pred_b)
            agree = paired & (gap <= self.tolerance * np.maximum(np.abs(pred_a), np.abs(pred_b)))
        paired_rows = np.bincount(window[paired], minlength=w)
        agreed = np.bincount(window[agree], minlength=w)
        for wi in np.flatnonzero(paired_rows).tolist():
            self.pairs[wi].rows += int(paired_rows[wi])
            self.pairs[wi].agree += int(agreed[wi])

    # -- evidence against outcomes ---------------------------------------------------------
    def evidence_keys(self) -> tuple[np.ndarray, np.ndarray]:
        """The request keys of the kept evidence rows and where each was read (a number that
        orders rows over all of the run's streams), in the order read."""
        if not self._evidence:
            return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
        keys = np.concatenate([part.key for _, part in self._evidence])
        order = np.concatenate(
            [(n << _ROW_BITS) + np.arange(part.key.size) for n, part in self._evidence]
        )
        return keys, order

    def keep_first(self, keep: np.ndarray) -> None:
        """Drop evidence rows whose request id an earlier row already carried (``keep``:
        one flag per row of ``evidence_keys``)."""
        self.joined.repeated_ids += int(keep.size - keep.sum())
        start = 0
        kept: list[tuple[int, _Evidence]] = []
        for n, part in self._evidence:
            mine = keep[start : start + part.key.size]
            start += part.key.size
            if mine.any():
                kept.append((n, _rows(part, mine)))
        self._evidence = kept

    def judge(self, outcomes: OutcomeIndex) -> None:
        """Fold the kept evidence against the outcomes (then drop it)."""
        parts = [part for _, part in self._evidence]
        self._evidence = []
        if not parts:
            return
        e = _Evidence._make(
            None if parts[0][i] is None else np.concatenate([p[i] for p in parts], axis=0)
            for i in range(len(_Evidence._fields))
        )
        w = len(self.windows)
        window = e.window.astype(np.int64)
        self.joined.evidence_rows += int(e.key.size)
        self.sampled_rows += np.bincount(window[e.ok_a], minlength=w)
        if self.task == "classification":
            found, codes, corrected = outcomes.labels_for(e.key)
            other, _, _ = outcomes.values_for(e.key)
            labels = outcomes.labels
            label_map = np.array(
                [self._class_index.get(label, len(self.classes)) for label in labels] or [0],
                dtype=np.int64,
            )
            truth = np.where(found, label_map[np.maximum(codes, 0)], 0)
        else:
            found, truth, corrected = outcomes.values_for(e.key)
            other, _, _ = outcomes.labels_for(e.key)
        self.joined.wrong_task += int((other & ~found).sum())
        scored = found
        self.joined.corrected += int((corrected & scored).sum())
        p_a = p_b = None
        if e.prob_a is not None and e.prob_b is not None:
            p_a = _p_truth(e.prob_a, truth, e.ok_a & scored)
            p_b = _p_truth(e.prob_b, truth, e.ok_b & scored)
        ok_a, pred_a, ok_b, pred_b = e.ok_a, e.pred_a, e.ok_b, e.pred_b
        canary = ok_b & ~e.served & scored
        paired = ok_a & ok_b
        for wi in np.unique(window).tolist():
            here = window == wi
            sel = here & ok_a & scored
            _add(self.champion[wi], truth[sel], pred_a[sel], None if p_a is None else p_a[sel])
            sel = here & canary
            _add(self.canary[wi], truth[sel], pred_b[sel], None if p_b is None else p_b[sel])
            sel = here & paired & scored
            if not sel.any():
                continue
            pairs = self.pairs[wi]
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
        try:
            return float(value)
        except OverflowError:  # an integer beyond float range
            return np.nan
    return np.nan


def _number(features: Any, name: str) -> float:
    if not isinstance(features, dict):
        return np.nan
    value = features.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return np.nan
    try:
        return float(value)
    except OverflowError:  # an integer beyond float range
        return np.nan


def _rows(part: _Evidence, pick: np.ndarray) -> _Evidence:
    return _Evidence._make(None if c is None else c[pick] for c in part)


def first_occurrences(keys: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Whether each row is the first (lowest ``order``) to carry its key."""
    keep = np.zeros(keys.size, dtype=bool)
    if keys.size:
        by_key = np.lexsort((order, keys))
        first = np.append(True, keys[by_key][1:] != keys[by_key][:-1])
        keep[by_key[first]] = True
    return keep


def _p_truth(probabilities: np.ndarray, truth: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Each row's probability of its true label (0 for a label the model cannot output, NaN
    where the output gave none)."""
    p = np.full(truth.size, np.nan)
    picked = np.flatnonzero(rows)
    if not picked.size:
        return p
    width = probabilities.shape[1]
    t = truth[picked]
    known = t < width
    values = np.zeros(picked.size)
    values[known] = probabilities[picked[known], t[known]]
    p[picked] = values
    return p


def _probability(output: Any, label: str) -> float:
    try:
        value = output["probabilities"].get(label, 0.0)
        if isinstance(value, bool):
            return np.nan
        number = float(value)
    except (KeyError, AttributeError, TypeError, ValueError, OverflowError):
        return np.nan
    return number if np.isfinite(number) else np.nan


def class_shares_expected(shares: ClassShares, classes: list[str]) -> np.ndarray:
    """The baseline's output proportions in ``classes`` order (0 for a class it lacks)."""
    lookup = dict(zip(shares.classes, shares.proportions, strict=True))
    return np.array([lookup.get(c, 0.0) for c in classes])
