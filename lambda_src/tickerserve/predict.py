"""Prediction requests: validate the body, route, align features, predict, shape the answer.

Pure logic over ``ModelService``; the API module only parses HTTP and maps errors.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tickerserve import request_ids
from tickerserve.capture import DISABLED, Capture, features_used, new_record
from tickerserve.contract import LIMITS, PREDICT
from tickerserve.errors import BadRequest, PayloadTooLarge, TickerserveError
from tickerserve.model import LoadedModel, Prediction
from tickerserve.registry import Resolved
from tickerserve.service import ModelService

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
) -> dict[str, Any]:
    """Answer one ``POST /predict`` body. ``request_id`` is the client's header id, which wins
    over the body's ``request_id``; without either, one is generated."""
    started = time.perf_counter_ns()
    request = parse_request(body)
    rid = request_id or request.request_id or request_ids.generate()
    serving = service.serving_for_ticker(
        request.ticker,
        alias=request.alias,
        version=request.version,
        asset_class=request.asset_class,
        timeframe=request.timeframe,
    )
    row = serving.model.schema.row(request.features)
    result = serving.model.predict(row.reshape(1, -1))
    answer = _answer(rid, request, serving.resolved, serving.model, result, 0)
    if capture.enabled:
        capture.emit(
            [
                new_record(
                    request_id=rid,
                    source=source,
                    ticker=request.ticker,
                    timeframe=request.timeframe,
                    resolved=serving.resolved,
                    role="champion",
                    answer=answer,
                    features=features_used(serving.model.schema.used_names, row),
                    challengers=[],
                    latency_us=(time.perf_counter_ns() - started) // 1000,
                )
            ]
        )
    return answer


def predict_batch(
    service: ModelService,
    body: Any,
    *,
    request_id: str | None = None,
    source: str = "direct",
    capture: Capture = DISABLED,
) -> dict[str, Any]:
    """Answer ``POST /predict/batch``: per-item results or errors, one model call per model.
    Each item's ``request_id`` is its own, else ``{batch request id}-{index}``."""
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
    # Pass 1: validate and resolve every item from the registry alone, loading nothing.
    groups: dict[tuple[str, str], list[tuple[int, PredictRequest, Resolved]]] = defaultdict(list)
    for index, item in enumerate(items):
        try:
            request = parse_request(item)
            _, resolved = service.resolve_ticker(
                request.ticker,
                alias=request.alias,
                version=request.version,
                asset_class=request.asset_class,
                timeframe=request.timeframe,
            )
        except TickerserveError as exc:
            results[index] = {"index": index, "request_id": rids[index], **exc.to_body()}
            continue
        groups[(resolved.model, resolved.version)].append((index, request, resolved))
    # Pass 2: one model version at a time: load, align, one predict call, let go. A batch
    # touching more models than the memory budget holds still stays within it.
    records: list[dict[str, Any]] = []
    for members in groups.values():
        try:
            model, answered = service.load(members[0][2])
        except TickerserveError as exc:
            for index, _, _ in members:
                results[index] = {"index": index, "request_id": rids[index], **exc.to_body()}
            continue
        rows: list[np.ndarray] = []
        kept: list[tuple[int, PredictRequest, Resolved]] = []
        for index, request, resolved in members:
            try:
                rows.append(model.schema.row(request.features))
            except TickerserveError as exc:
                results[index] = {"index": index, "request_id": rids[index], **exc.to_body()}
                continue
            # The alias each item asked for; the version that actually answered.
            kept.append((index, request, replace(answered, alias=resolved.alias)))
        if rows:
            matrix = np.vstack(rows)
            result = model.predict(matrix)
            latency_us = (time.perf_counter_ns() - started) // 1000
            for position, (index, request, who) in enumerate(kept):
                answer = _answer(rids[index], request, who, model, result, position)
                results[index] = {"index": index, **answer}
                if capture.enabled:
                    records.append(
                        new_record(
                            request_id=rids[index],
                            source=source,
                            ticker=request.ticker,
                            timeframe=request.timeframe,
                            resolved=who,
                            role="champion",
                            answer=answer,
                            features=features_used(model.schema.used_names, matrix[position]),
                            challengers=[],
                            latency_us=latency_us,
                        )
                    )
    capture.emit(records)
    failed = sum(1 for r in results if r is not None and "error" in r)
    return {
        "request_id": batch_id,
        "results": results,
        "succeeded": len(items) - failed,
        "failed": failed,
    }


def _answer(
    request_id: str,
    request: PredictRequest,
    resolved: Resolved,
    model: LoadedModel,
    result: Prediction,
    position: int,
) -> dict[str, Any]:
    """One row's answer: a label with its probabilities, or a regression value."""
    answer: dict[str, Any] = {
        "request_id": request_id,
        "ticker": request.ticker,
        "model": {"name": resolved.model, "version": resolved.version, "alias": resolved.alias},
    }
    if request.timeframe is not None:
        answer["timeframe"] = request.timeframe
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
