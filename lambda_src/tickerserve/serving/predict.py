"""Prediction requests: validate the body, route, align features, predict, shape the answer.

Pure logic over ``ModelService``; the API module only parses HTTP and maps errors.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tickerserve.contract import LIMITS, PREDICT
from tickerserve.errors import BadRequest, PayloadTooLarge, TickerserveError
from tickerserve.serving import request_ids
from tickerserve.serving.capture import DISABLED, Capture, captured_inputs, new_record
from tickerserve.serving.model import LoadedModel, Prediction
from tickerserve.serving.network_answers import network_answer
from tickerserve.serving.service import ModelService
from tickerserve.serving.traffic import Aligned, Challengers, Decision, decide
from tickerserve.storage.registry import Resolved

logger = logging.getLogger(__name__)

MAX_BATCH_ITEMS = LIMITS.batch_items
PREDICT_FIELDS = frozenset(PREDICT.fields)


@dataclass(frozen=True)
class PredictRequest:
    ticker: str
    features: Any
    alias: str | None
    version: str | None
    asset_class: str | None
    timeframe: str | None = None
    request_id: str | None = None  # the body's own id, when it is a valid one
    signal: str | None = None  # None: the ticker's default signal


def parse_request(body: Any) -> PredictRequest:
    """Validate the shape of one predict body against ``contract.json`` (feature values are
    checked per model)."""
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object", code="invalid_body")
    unknown = sorted(str(k)[:40] for k in body if k not in PREDICT_FIELDS)
    if unknown:
        raise BadRequest(
            f"unknown field(s): {', '.join(unknown[:10])}; "
            f"expected {', '.join(sorted(PREDICT_FIELDS))}",
            code="unknown_fields",
        )
    for name in PREDICT.required:
        if name not in body:
            raise BadRequest(f"missing field: {name}", code="missing_field")
    names: dict[str, str | None] = {}
    for name, field in PREDICT.fields.items():
        if field.name_rule is None:
            continue
        try:
            if name in PREDICT.required:  # never null
                names[name] = field.name_rule.check(body[name])
            else:
                names[name] = _optional(body, name, field.name_rule.check)
        except ValueError as exc:
            raise BadRequest(str(exc), code=field.invalid_code) from None
    for group in PREDICT.mutually_exclusive:
        given = [name for name in group if names.get(name) is not None]
        if len(given) > 1:
            raise BadRequest(f"give either {' or '.join(group)}, not both", code="invalid_field")
    features = body["features"]
    if not isinstance(features, dict | list):
        raise BadRequest(
            "features must be an object of name -> number or a list of numbers",
            code="invalid_features",
        )
    raw_id = body.get(request_ids.FIELD)
    if raw_id is not None and not isinstance(raw_id, str):
        raise BadRequest("request_id must be a string", code="invalid_field")
    ticker = names["ticker"]
    assert ticker is not None  # required
    return PredictRequest(
        ticker.upper(),
        features,
        names["alias"],
        names["version"],
        names["asset_class"],
        names["timeframe"],
        request_ids.valid(raw_id),  # a string that is no usable id: one is generated
        names["signal"],
    )


def _optional(body: dict[str, Any], name: str, check: Any) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return check(value)


def predict(
    service: ModelService,
    body: Any,
    *,
    request_id: str | None = None,
    source: str = "direct",
    capture: Capture = DISABLED,
    challengers: Challengers | None = None,
) -> dict[str, Any]:
    """Answer one ``POST /predict`` body. ``request_id`` is the client's header id, which wins
    over the body's ``request_id``; without either, one is generated. A canary may answer
    (the answer names it); a shadow challenger is scored after the answer is computed."""
    started = time.perf_counter_ns()
    request = parse_request(body)
    rid = request_id or request.request_id or request_ids.generate()
    route, champion = service.resolve_ticker(
        request.ticker,
        alias=request.alias,
        version=request.version,
        asset_class=request.asset_class,
        timeframe=request.timeframe,
        signal=request.signal,
    )
    decision = _decide(service, champion, rid, request, capture)
    decision, model, resolved, row, result = _answer_row(service, decision, request)
    answer = _answer(rid, request, route.signal, resolved, model, result, 0)
    if decision.capture:
        latency_us = (time.perf_counter_ns() - started) // 1000
        scored: list[dict[str, Any]] = []
        if decision.shadow is not None and challengers is not None:
            scored = challengers.score(
                resolved.model, decision.shadow, [request.features], [(model.schema, row)]
            )
        features, window = captured_inputs(model.schema, row, request.features)
        capture.emit(
            [
                new_record(
                    request_id=rid,
                    source=source,
                    ticker=request.ticker,
                    signal=route.signal,
                    timeframe=request.timeframe,
                    resolved=resolved,
                    role=decision.role,
                    answer=answer,
                    features=features,
                    challengers=scored,
                    latency_us=latency_us,
                    window=window,
                )
            ]
        )
    return answer


def _decide(
    service: ModelService, champion: Resolved, rid: str, request: PredictRequest, capture: Capture
) -> Decision:
    decision = decide(
        service.registry(),
        champion,
        rid,
        pinned=request.alias is not None or request.version is not None,
        capture=capture.enabled,
    )
    if decision.canary_missing:
        service.count("canary_fallbacks", "CanaryFallbacks")
    return decision


def _answer_row(
    service: ModelService, decision: Decision, request: PredictRequest
) -> tuple[Decision, LoadedModel, Resolved, np.ndarray, Prediction]:
    """Decision, model, version, aligned row and prediction for one request. A canary that
    cannot answer (not loadable, or it cannot take these features) leaves it to the champion."""
    if decision.role == "canary":
        try:
            model, resolved = service.load(decision.answer)
            row = model.schema.row(request.features)
            return decision, model, resolved, row, model.predict(row.reshape(1, -1))
        except Exception as exc:  # never fail a request because of the canary
            service.count("canary_fallbacks", "CanaryFallbacks")
            logger.warning("canary %s could not answer: %s", decision.answer, exc)
            decision = decision.to_champion()
    model, resolved = service.load(decision.champion)
    row = model.schema.row(request.features)
    return decision, model, resolved, row, model.predict(row.reshape(1, -1))


@dataclass
class _Item:
    """One batch item on its way: its request, traffic decision and (once scored) answer."""

    index: int
    request_id: str
    request: PredictRequest
    decision: Decision
    signal: str  # the signal that answers (named, or the ticker's default)
    answer: dict[str, Any] | None = None
    record: dict[str, Any] | None = None
    aligned: Aligned | None = None  # its row as the answering model aligned it


def predict_batch(
    service: ModelService,
    body: Any,
    *,
    request_id: str | None = None,
    source: str = "direct",
    capture: Capture = DISABLED,
    challengers: Challengers | None = None,
) -> dict[str, Any]:
    """Answer ``POST /predict/batch``: per-item results or errors, one model call per model
    version. Each item's ``request_id`` is its own, else ``{batch request id}-{index}``."""
    started = time.perf_counter_ns()
    if (
        not isinstance(body, dict)
        or set(body) - {request_ids.FIELD} != {"items"}
        or not isinstance(body["items"], list)
    ):
        raise BadRequest('body must be {"items": [<predict bodies>]}', code="invalid_body")
    items = body["items"]
    if not items:
        raise BadRequest("items must not be empty", code="invalid_body")
    if len(items) > MAX_BATCH_ITEMS:
        raise PayloadTooLarge(
            f"{len(items)} items; a batch holds at most {MAX_BATCH_ITEMS}", code="batch_too_large"
        )
    batch_id = (
        request_id or request_ids.valid(body.get(request_ids.FIELD)) or request_ids.generate()
    )
    rids = [request_ids.for_item(batch_id, i, item) for i, item in enumerate(items)]
    results: list[dict[str, Any] | None] = [None] * len(items)

    def fail(index: int, exc: TickerserveError) -> None:
        results[index] = {"index": index, "request_id": rids[index], **exc.to_body()}

    # Pass 1: validate, resolve and decide every item from the registry alone, loading nothing.
    groups: dict[tuple[str, str], list[_Item]] = defaultdict(list)
    for index, raw in enumerate(items):
        try:
            request = parse_request(raw)
            route, champion = service.resolve_ticker(
                request.ticker,
                alias=request.alias,
                version=request.version,
                asset_class=request.asset_class,
                timeframe=request.timeframe,
                signal=request.signal,
            )
        except TickerserveError as exc:
            fail(index, exc)
            continue
        decision = _decide(service, champion, rids[index], request, capture)
        item = _Item(index, rids[index], request, decision, route.signal)
        groups[(decision.answer.model, decision.answer.version)].append(item)
    # Pass 2: one model version at a time: load, align, one predict call, let go. A batch
    # touching more models than the memory budget holds still stays within it. Canary items
    # their canary cannot answer join their champion's group (processed later).
    scored: list[_Item] = []
    while groups:
        members = groups.pop(next(iter(groups)))
        try:
            model, answered = service.load(members[0].decision.answer)
        except TickerserveError as exc:
            for item in _to_champion(service, members, groups):
                fail(item.index, exc)
            continue
        rows: list[np.ndarray] = []
        kept: list[_Item] = []
        for item in members:
            try:
                rows.append(model.schema.row(item.request.features))
                kept.append(item)
            except TickerserveError as exc:
                for lost in _to_champion(service, [item], groups):
                    fail(lost.index, exc)
        if not rows:
            continue
        matrix = np.vstack(rows)
        result = model.predict(matrix)
        latency_us = (time.perf_counter_ns() - started) // 1000
        for position, item in enumerate(kept):
            # The alias each item asked for (or its canary's); the version that answered.
            who = replace(answered, alias=item.decision.answer.alias)
            item.answer = _answer(
                item.request_id, item.request, item.signal, who, model, result, position
            )
            results[item.index] = {"index": item.index, **item.answer}
            if item.decision.capture:
                item.aligned = (model.schema, matrix[position])
                features, window = captured_inputs(model.schema, matrix[position])
                item.record = new_record(
                    request_id=item.request_id,
                    source=source,
                    ticker=item.request.ticker,
                    signal=item.signal,
                    timeframe=item.request.timeframe,
                    resolved=who,
                    role=item.decision.role,
                    answer=item.answer,
                    features=features,
                    challengers=[],
                    latency_us=latency_us,
                    window=window,
                )
                scored.append(item)
    if challengers is not None:
        _score_shadows(challengers, [i for i in scored if i.decision.shadow is not None])
    capture.emit([item.record for item in scored if item.record is not None])
    failed = sum(1 for r in results if r is not None and "error" in r)
    return {
        "request_id": batch_id,
        "results": results,
        "succeeded": len(items) - failed,
        "failed": failed,
    }


def _to_champion(
    service: ModelService, items: list[_Item], groups: dict[tuple[str, str], list[_Item]]
) -> list[_Item]:
    """Send canary items back to their champion's group; return the others (they failed)."""
    failed = []
    for item in items:
        if item.decision.role != "canary":
            failed.append(item)
            continue
        service.count("canary_fallbacks", "CanaryFallbacks")
        item.decision = item.decision.to_champion()
        champion = item.decision.champion
        groups[(champion.model, champion.version)].append(item)
    return failed


def _score_shadows(challengers: Challengers, items: list[_Item]) -> None:
    """Score each model's shadow alias on its items' rows, one call per challenger."""
    by_challenger: dict[tuple[str, str], list[_Item]] = defaultdict(list)
    for item in items:
        assert item.decision.shadow is not None
        by_challenger[(item.decision.champion.model, item.decision.shadow)].append(item)
    for (model, alias), members in by_challenger.items():
        entries = challengers.score(
            model, alias, [i.request.features for i in members], [i.aligned for i in members]
        )
        for item, entry in zip(members, entries, strict=True):
            assert item.record is not None
            item.record["challengers"] = [entry]


def _answer(
    request_id: str,
    request: PredictRequest,
    signal: str,
    resolved: Resolved,
    model: LoadedModel,
    result: Prediction,
    position: int,
) -> dict[str, Any]:
    """One row's answer: a label with its probabilities, or a regression value."""
    answer: dict[str, Any] = {
        "request_id": request_id,
        "ticker": request.ticker,
        "signal": signal,
        "model": {"name": resolved.model, "version": resolved.version, "alias": resolved.alias},
    }
    if request.timeframe is not None:
        answer["timeframe"] = request.timeframe
    if model.network is not None:
        return network_answer(answer, model.network, model.task, model.classes, result, position)
    outputs = result.outputs[position]
    if model.task == "regression":
        answer["prediction"] = float(outputs)
        return answer
    best = int(outputs.argmax())
    answer["prediction"] = model.classes[best]
    answer["confidence"] = float(outputs[best])
    answer["probabilities"] = dict(zip(model.classes, outputs.tolist(), strict=True))
    if result.agreement is not None:
        answer["agreement"] = float(result.agreement[position])
    return answer
