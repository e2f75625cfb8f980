"""The prediction pipeline: the steps every row goes through, written once for a single
request and a batch (a single request is a batch of one, answered without the grouping a
champion's row does not need).

1. resolve: the route and the version it names, from the registry alone (nothing loaded),
   kept per registry (``ModelService.registry_memo``): a warm request resolves nothing twice;
2. decide: canary, shadow and capture sampling, each a hash of the row's request id
   (``traffic.decide``); where no rate leaves anything to chance, the route's one decision
   (``traffic.fixed_decision``);
3. predict: rows grouped by the model version that answers them, one group at a time (a batch
   touching more models than the memory budget holds stays within it): load, align each row,
   one model call per group (a single row stays one row: LightGBM's single-row fast path),
   and one explain call for the group's rows that asked for an explanation (a model with no
   exact explanation refuses just those rows, each with its 400);
4. fall back: a canary that cannot answer a row (not loadable, other inputs, a failed call)
   hands it to its champion's group, answered later in the same request;
5. capture: one record per sampled row, with the features as the answering model used them;
6. shadow: after every answer, the challenger scores the captured rows, one call per
   challenger (``traffic.Challengers``; it never changes or fails an answer).

A row that cannot be answered keeps its error; ``predict`` raises it for a single request and
reports it as the item's result in a batch. A new request field travels in ``PredictRequest``;
a new part of the answer is added where ``answer_of`` builds it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from tickerserve.errors import TickerserveError
from tickerserve.metric_names import PREDICTION
from tickerserve.serving.capture import DISABLED, Capture, captured_inputs, new_record
from tickerserve.serving.explanations import explain_rows
from tickerserve.serving.features import FeatureSchema
from tickerserve.serving.guard import RowWarning
from tickerserve.serving.model import LoadedModel, ModelKey, Prediction
from tickerserve.serving.network_answers import network_answer
from tickerserve.serving.service import ModelService, resolve_route
from tickerserve.serving.traffic import Aligned, Challengers, Decision, decide, fixed_decision
from tickerserve.serving.windows import WindowSchema
from tickerserve.storage.registry import Registry, Resolved, Route

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class PredictRequest:
    """One predict body, validated (feature values are checked by the model that answers);
    read-only once parsed (not frozen: a frozen dataclass costs every request a microsecond).

    A checked string field of ``contract.json``'s ``requests.predict`` (one with a name rule)
    arrives here under its own name: adding one there means adding it here."""

    ticker: str
    features: Any
    alias: str | None = None
    version: str | None = None
    asset_class: str | None = None
    timeframe: str | None = None
    request_id: str | None = None  # the body's own id, when it is a valid one
    signal: str | None = None  # None: the ticker's default signal
    explain: int | None = None  # how many contributions the answer shows; None: no explanation


@dataclass(eq=False, slots=True)
class Row:
    """One request on its way through the pipeline, and what became of it: an answer (with
    its capture record, if sampled) or an error."""

    request: PredictRequest
    request_id: str
    index: int = 0  # its place in the batch
    signal: str = ""  # once resolved: the signal that answers (named, or the ticker's default)
    decision: Decision | None = None  # once resolved: who answers, what is recorded
    served: Resolved | None = None  # the version that answered, under the alias asked for
    answer: dict[str, Any] | None = None
    error: TickerserveError | None = None
    record: dict[str, Any] | None = None  # its capture record
    aligned: Aligned | None = None  # its row as the answering model aligned it (for a shadow)


@dataclass(frozen=True, slots=True)
class Routed:
    """What a request resolves to under one registry, the same for every request asking the
    same (``Pipeline._routed`` keeps it in the registry's memo)."""

    route: Route
    champion: Resolved  # the version the route's alias (or pin) names
    key: ModelKey  # the champion's
    pinned: bool  # the request named an alias or a version: never diverted nor shadowed
    fixed: Decision | None  # the decision of every request id, where ids decide nothing


# Rows waiting to be answered, by the model version that answers them (model, version).
Groups = dict[tuple[str, str], list[Row]]
K = TypeVar("K")


class Pipeline:
    """The steps every row goes through, bound to the service and the request's settings (one
    per request)."""

    __slots__ = ("capture", "captured", "challengers", "service", "shadowed", "source")

    def __init__(
        self,
        service: ModelService,
        capture: Capture = DISABLED,
        challengers: Challengers | None = None,
        source: str = "direct",
    ) -> None:
        self.service = service
        self.capture = capture
        self.challengers = challengers
        self.source = source  # where the rows came from, as records say: api, batch, direct
        self.captured: list[Row] = []  # rows with a capture record, in the order answered
        self.shadowed = False  # whether a captured row has a challenger to score

    def run(self, rows: list[Row], started: int) -> None:
        """Answer ``rows`` (each gets an answer or an error); ``started`` is the request's
        ``perf_counter_ns`` at arrival, for the latency its capture records hold."""
        if len(rows) == 1:
            self._run_one(rows[0], started)
        else:
            groups = self._route(rows)
            while groups:  # one version at a time, the last added first
                self._answer_group(groups.popitem()[1], groups, started)
        captured = self.captured
        if captured:
            if self.shadowed and self.challengers is not None:
                self._shadow(self.challengers, captured)
            self.capture.emit([row.record for row in captured if row.record is not None])

    def _run_one(self, row: Row, started: int) -> None:
        """One row through the same steps, without a batch's grouping: a champion's row is
        loaded, aligned and answered at once; a canary's goes the batch's way (its canary may
        hand it back to the champion)."""
        held = self._registry_memo([row])
        if held is None:
            return
        registry, memo = held
        routed = self._routed(row.request, registry, memo)
        if isinstance(routed, TickerserveError):
            row.error = routed
            return
        decision = self._decide(row, routed, registry)
        if decision.role != "champion":
            groups: Groups = {}
            _join(groups, decision.answer, row)
            while groups:
                self._answer_group(groups.popitem()[1], groups, started)
            return
        wanted = decision.answer
        try:
            model, row.served = self.service.load(
                wanted, routed.key if wanted is routed.champion else None
            )
        except Exception as exc:  # a champion's row: its error, or a fault of ours (raised)
            _fail(row, decision, exc, [])
            return
        self._predict(model, [row], [], started)

    # -- 1, 2: resolve and decide, from the registry alone ---------------------------------
    def _route(self, rows: list[Row]) -> Groups:
        groups: Groups = {}
        held = self._registry_memo(rows)
        if held is None:
            return groups
        registry, memo = held
        # Rows asking what failed to resolve fail alike: resolved once per distinct request.
        failed: dict[tuple[Any, ...], TickerserveError] = {}
        for row in rows:
            routed = self._routed(row.request, registry, memo, failed)
            if isinstance(routed, TickerserveError):
                row.error = routed
                continue
            _join(groups, self._decide(row, routed, registry).answer, row)
        return groups

    def _registry_memo(self, rows: list[Row]) -> tuple[Registry, dict[Any, Any]] | None:
        """The registry and its memo; None when there is no registry to answer from (each
        row then has that error: a batch reports it per item, as any routing error)."""
        try:
            return self.service.registry_memo()
        except TickerserveError as exc:
            for row in rows:
                row.error = exc
            return None

    def _routed(
        self,
        request: PredictRequest,
        registry: Registry,
        memo: dict[Any, Any],
        failed: dict[tuple[Any, ...], TickerserveError] | None = None,
    ) -> Routed | TickerserveError:
        """What ``request`` resolves to under ``registry``: from the registry's memo once
        another request asked the same (errors are not kept there: each raise is its own)."""
        capture = self.capture.enabled
        key = (
            request.ticker,
            request.alias,
            request.version,
            request.asset_class,
            request.timeframe,
            request.signal,
            capture,
        )
        routed: Routed | None = memo.get(key)
        if routed is not None:
            return routed
        if failed is not None and key in failed:
            return failed[key]
        try:
            route, champion = resolve_route(
                registry,
                request.ticker,
                alias=request.alias,
                version=request.version,
                asset_class=request.asset_class,
                timeframe=request.timeframe,
                signal=request.signal,
            )
        except TickerserveError as exc:
            if failed is not None:
                failed[key] = exc
            return exc
        pinned = request.alias is not None or request.version is not None
        routed = memo[key] = Routed(
            route,
            champion,
            ModelKey(champion.model, champion.version),
            pinned,
            fixed_decision(registry, champion, pinned=pinned, capture=capture),
        )
        return routed

    def _decide(self, row: Row, routed: Routed, registry: Registry) -> Decision:
        """The row's traffic decision (the route's own where ids decide nothing), counted
        when its canary alias names no version."""
        row.signal = routed.route.signal
        decision = routed.fixed
        if decision is None:
            decision = decide(
                registry,
                routed.champion,
                row.request_id,
                pinned=routed.pinned,
                capture=self.capture.enabled,
            )
        row.decision = decision
        if decision.canary_missing:
            self.service.count("canary_fallbacks", PREDICTION.canary_fallbacks)
        return decision

    # -- 3, 5: predict one model version at a time, capture what is sampled ----------------
    def _answer_group(self, rows: list[Row], groups: Groups, started: int) -> None:
        """Load the version, align each row, one model call. Rows that name the version by
        another alias (or pin it) load it as they asked: a failing alias may be answered by
        its last good version, a pinned version never."""
        # The version is the group's; what a load may differ by is the alias and digest.
        loads: dict[tuple[str | None, str | None], tuple[LoadedModel, Resolved] | Exception] = {}
        by_model: dict[LoadedModel, list[Row]] = {}
        lost: list[tuple[Row, Exception]] = []  # canary rows their canary cannot answer
        for row in rows:
            decision = row.decision
            assert decision is not None  # every row past routing has one
            wanted = decision.answer
            key = (wanted.alias, wanted.metadata_sha256)
            outcome = loads.get(key)
            if outcome is None:
                try:
                    outcome = self.service.load(wanted)
                except Exception as exc:
                    outcome = exc
                loads[key] = outcome
            if isinstance(outcome, Exception):
                _fail(row, decision, outcome, lost)
                continue
            model, row.served = outcome
            _add(by_model, model, row)
        for model, members in by_model.items():
            self._predict(model, members, lost, started)
        if lost:
            self._fall_back(lost, groups)

    def _predict(
        self, model: LoadedModel, rows: list[Row], lost: list[tuple[Row, Exception]], started: int
    ) -> None:
        """Align each row to ``model``, predict them in one call, answer and capture them; a
        canary's rows the model cannot take go to ``lost``."""
        schema = model.schema
        if len(rows) > 1 and isinstance(schema, FeatureSchema):
            kept, matrix = _aligned_rows(schema, rows, lost)
        else:
            kept, matrix = _aligned_one_by_one(schema, rows, lost)
        if not kept:
            return
        try:
            result = model.predict(matrix)
        except Exception as exc:
            if any(row.decision is None or row.decision.role != "canary" for row in kept):
                raise  # the champion cannot predict: a fault of ours, not the client's
            lost.extend((row, exc) for row in kept)
            return
        explained: dict[int, dict[str, Any]] | None = None
        if len(kept) == 1:  # a single request: no comprehension (its frame costs more)
            asking = [] if kept[0].request.explain is None else [0]
        else:
            asking = [p for p, row in enumerate(kept) if row.request.explain is not None]
        if asking:
            explained = self._explain(model, matrix, result, kept, asking, lost)
            if explained is None:  # refused: those rows have their error (or went back)
                refused = set(asking)
                positions = [p for p in range(len(kept)) if p not in refused]
                kept = [kept[p] for p in positions]
                if not kept:
                    return
                matrix = matrix[positions]
                result = _rows_of(result, positions)
        warned = self._warnings(model, matrix, kept)
        latency_us = -1  # measured when the first of these rows is captured
        # A batch's probabilities as Python floats in one call, not one call per row.
        listed = (
            result.outputs.tolist()
            if len(kept) > 1 and model.network is None and model.task != "regression"
            else None
        )
        for position, row in enumerate(kept):
            decision, served = row.decision, row.served
            assert decision is not None and served is not None
            row.answer = answer = answer_of(
                row, served, model, result, position, None if listed is None else listed[position]
            )
            if warned is not None:
                answer["warnings"] = warned[position]
            if explained is not None and position in explained:
                answer["explanation"] = explained[position]
            if decision.capture:
                if latency_us < 0:
                    latency_us = (time.perf_counter_ns() - started) // 1000
                self.shadowed = self.shadowed or decision.shadow is not None
                vector = matrix[position]
                row.aligned = (schema, vector)
                features, window = captured_inputs(schema, vector, row.request.features)
                row.record = new_record(
                    request_id=row.request_id,
                    source=self.source,
                    ticker=row.request.ticker,
                    signal=row.signal,
                    timeframe=row.request.timeframe,
                    resolved=served,
                    role=decision.role,
                    answer=answer,
                    features=features,
                    challengers=[],
                    latency_us=latency_us,
                    window=window,
                )
                self.captured.append(row)

    @staticmethod
    def _explain(
        model: LoadedModel,
        matrix: np.ndarray,
        result: Prediction,
        rows: list[Row],
        asking: list[int],
        lost: list[tuple[Row, Exception]],
    ) -> dict[int, dict[str, Any]] | None:
        """The explanations of the rows at ``asking`` (positions in ``rows``), by position:
        one explain call for all of them, each explained for the answer it got. None when
        the model has none: each of those rows then has the 400 as its error, or (a
        canary's) goes to its champion, as a row the model cannot take."""
        every = len(asking) == len(rows)
        try:
            explanations = explain_rows(
                model,
                matrix if every else matrix[asking],
                result.outputs if every else result.outputs[asking],
            )
        except Exception as exc:
            for position in asking:
                row = rows[position]
                assert row.decision is not None
                _fail(row, row.decision, exc, lost)
            return None
        names = model.used_features
        return {
            position: explanation.to_answer(names, top)
            for position, explanation in zip(asking, explanations, strict=True)
            if (top := rows[position].request.explain) is not None
        }

    def _warnings(
        self, model: LoadedModel, matrix: np.ndarray, rows: list[Row]
    ) -> list[list[RowWarning]] | None:
        """Each row's request warnings (issue 21), counted per model; None when the version
        has no feature ranges (its answers then carry none)."""
        guard = model.guard
        if guard is None:
            return None
        if isinstance(model.schema, WindowSchema):  # a window's newest row, as capture keeps it
            matrix = model.schema.last_rows(matrix)
        warned = [guard.check(matrix[0])] if len(rows) == 1 else guard.check_rows(matrix)
        count = sum(map(len, warned))
        if count:
            served = rows[0].served
            assert served is not None
            self.service.count_warnings(served.model, count)
        return warned

    # -- 4: fall back from a canary to its champion -----------------------------------------
    def _fall_back(self, lost: list[tuple[Row, Exception]], groups: Groups) -> None:
        """Canary rows their canary could not answer join their champion's group (answered
        after this one); each is counted."""
        canary = lost[0][0].decision
        for row, _ in lost:
            assert row.decision is not None
            self.service.count("canary_fallbacks", PREDICTION.canary_fallbacks)
            row.decision = decision = row.decision.to_champion()
            row.served = None
            _join(groups, decision.champion, row)
        logger.warning(
            "canary %s could not answer %d row(s): %s",
            canary.answer if canary is not None else None,
            len(lost),
            lost[0][1],
        )

    # -- 6: shadow --------------------------------------------------------------------------
    @staticmethod
    def _shadow(challengers: Challengers, captured: list[Row]) -> None:
        """Score each model's shadow alias on its captured rows, one call per challenger."""
        by_challenger: dict[tuple[str, str], list[Row]] = {}
        for row in captured:
            decision = row.decision
            if decision is not None and decision.shadow is not None:
                _add(by_challenger, (decision.champion.model, decision.shadow), row)
        for (model, alias), shadowed in by_challenger.items():
            entries = challengers.score(
                model, alias, [r.request.features for r in shadowed], [r.aligned for r in shadowed]
            )
            for row, entry in zip(shadowed, entries, strict=True):
                assert row.record is not None
                row.record["challengers"] = [entry]


def _aligned_rows(
    schema: FeatureSchema, rows: list[Row], lost: list[tuple[Row, Exception]]
) -> tuple[list[Row], np.ndarray]:
    """A batch's rows aligned at once (``FeatureSchema.rows``: the same rows and errors as
    one by one): the rows the model takes, in order, and their matrix."""
    matrix, taken, errors = schema.rows([row.request.features for row in rows])
    if not errors:
        return rows, matrix
    for position in sorted(errors):  # in row order, as one by one
        row, exc = rows[position], errors[position]
        assert row.decision is not None
        _fail(row, row.decision, exc, lost)
    return [rows[i] for i in taken], matrix


def _aligned_one_by_one(
    schema: Any, rows: list[Row], lost: list[tuple[Row, Exception]]
) -> tuple[list[Row], np.ndarray]:
    """Each row aligned on its own (a single request, a window model's rows)."""
    vectors: list[np.ndarray] = []
    kept: list[Row] = []
    for row in rows:
        try:
            vectors.append(schema.row(row.request.features))
        except Exception as exc:
            assert row.decision is not None
            _fail(row, row.decision, exc, lost)
            continue
        kept.append(row)
    if not kept:
        return kept, np.empty((0, 0))
    # One row stays one row (LightGBM's single-row fast path); vstack copies.
    matrix = vectors[0].reshape(1, -1) if len(vectors) == 1 else np.vstack(vectors)
    return kept, matrix


def _join(groups: Groups, resolved: Resolved, row: Row) -> None:
    _add(groups, (resolved.model, resolved.version), row)


def _add(groups: dict[K, list[Row]], key: K, row: Row) -> None:
    """Append ``row`` to its group (a new list only for a new key: ``setdefault`` would
    build one for every row)."""
    group = groups.get(key)
    if group is None:
        groups[key] = [row]
    else:
        group.append(row)


def _fail(row: Row, decision: Decision, exc: Exception, lost: list[tuple[Row, Exception]]) -> None:
    """A row its model could not take: a canary's goes to its champion (never fail a request
    because of the canary); otherwise a client's or storage error is the row's answer, and
    anything else a fault of ours (500)."""
    if decision.role == "canary":
        lost.append((row, exc))
    elif isinstance(exc, TickerserveError):
        row.error = exc
    else:
        raise exc


def _rows_of(result: Prediction, positions: list[int]) -> Prediction:
    """The prediction of some of the rows (those left once others were refused)."""
    return Prediction(
        result.outputs[positions],
        None if result.agreement is None else result.agreement[positions],
        None if result.value is None else result.value[positions],
    )


def answer_of(
    row: Row,
    served: Resolved,
    model: LoadedModel,
    result: Prediction,
    position: int,
    listed: list[float] | None = None,
) -> dict[str, Any]:
    """One row's answer: a label with its probabilities, or a regression value; ``served``
    names the version that answered and the alias the row asked for (or its canary's).
    ``listed``: a classifier's row of probabilities already as Python floats (a batch's)."""
    request = row.request
    answer: dict[str, Any] = {
        "request_id": row.request_id,
        "ticker": request.ticker,
        "signal": row.signal,
        "model": {"name": served.model, "version": served.version, "alias": served.alias},
    }
    if request.timeframe is not None:
        answer["timeframe"] = request.timeframe
    if model.network is not None:
        return network_answer(answer, model.network, model.task, model.classes, result, position)
    if model.task == "regression":
        answer["prediction"] = float(result.outputs[position])
        return answer
    # Python floats from here: a few labels, and numpy's scalar calls would cost a microsecond.
    probabilities = result.outputs[position].tolist() if listed is None else listed
    best = probabilities.index(max(probabilities))  # the first maximum, as argmax
    answer["prediction"] = model.classes[best]
    answer["confidence"] = probabilities[best]
    answer["probabilities"] = dict(zip(model.classes, probabilities, strict=True))
    if result.agreement is not None:
        answer["agreement"] = float(result.agreement[position])
    return answer
