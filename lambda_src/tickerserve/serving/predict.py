"""Prediction requests: validate a ``POST /predict`` or ``/predict/batch`` body, give every row
its request id, answer the rows through the prediction pipeline (``serving.pipeline``) and
shape the response. The HTTP layer only parses events and maps errors (``http.api``).
"""

from __future__ import annotations

import time
from typing import Any

from tickerserve.contract import LIMITS, PREDICT
from tickerserve.errors import BadRequest, PayloadTooLarge, TickerserveError
from tickerserve.serving import request_ids
from tickerserve.serving.capture import DISABLED, Capture
from tickerserve.serving.explanations import top_count
from tickerserve.serving.pipeline import Pipeline, PredictRequest, Row
from tickerserve.serving.service import ModelService
from tickerserve.serving.traffic import Challengers

MAX_BATCH_ITEMS = LIMITS.batch_items
MAX_EXPLAINED_ITEMS = LIMITS.explained_items  # TreeSHAP costs up to milliseconds a row
PREDICT_FIELDS = frozenset(PREDICT.fields)


# The checked string fields: (name, its rule's check, the error code, whether required).
_NAMED = tuple(
    (name, field.name_rule.check, field.invalid_code, name in PREDICT.required)
    for name, field in PREDICT.fields.items()
    if field.name_rule is not None
)


# A body of these two fields only (most batch items): its ticker is all there is to check,
# as long as they are all the contract requires.
_TICKER_ONLY = frozenset(("ticker", "features"))
_TICKER_ONLY_SUFFICES = _TICKER_ONLY.issuperset(PREDICT.required)
_TICKER_CHECK = PREDICT.fields["ticker"].name_rule.check  # type: ignore[union-attr]
# Tickers already checked (raw -> as checked), shared by every request of the process: a warm
# sandbox sees the same few again and again. Bounded (emptied when full): clients choose them.
_CHECKED: dict[str, str] = {}
_CHECKED_ENTRIES = 4096


def parse_request(body: Any, tickers: dict[str, str] | None = None) -> PredictRequest:
    """Validate the shape of one predict body against ``contract.json`` (feature values are
    checked per model). ``tickers``: the tickers already checked (raw -> as checked), by
    default the process's own, so each distinct ticker is checked once; the same request and
    errors."""
    request = _ticker_only(body, _CHECKED if tickers is None else tickers)
    if request is not None:
        return request
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object", code="invalid_body")
    if not PREDICT_FIELDS.issuperset(body):
        unknown = sorted(str(k)[:40] for k in body if k not in PREDICT_FIELDS)
        raise BadRequest(
            f"unknown field(s): {', '.join(unknown[:10])}; "
            f"expected {', '.join(sorted(PREDICT_FIELDS))}",
            code="unknown_fields",
        )
    for name in PREDICT.required:
        if name not in body:
            raise BadRequest(f"missing field: {name}", code="missing_field")
    names: dict[str, Any] = {}
    for name, check, code, required in _NAMED:
        value = body.get(name)
        if value is None and not required:  # a required one is never null
            names[name] = None
            continue
        try:
            if not isinstance(value, str) and not required:
                raise ValueError(f"{name} must be a string")
            names[name] = check(value)
        except ValueError as exc:
            raise BadRequest(str(exc), code=code) from None
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
    names["ticker"] = names["ticker"].upper()
    return PredictRequest(
        features=features,
        request_id=request_ids.valid(raw_id),  # a string that is no usable id: one is generated
        explain=top_count(body.get("explain")),
        **names,
    )


def _ticker_only(body: Any, tickers: dict[str, str]) -> PredictRequest | None:
    """The request of a body holding a valid ticker and features and nothing else, checked
    as ``parse_request`` checks it (each distinct ticker once); None for any other body."""
    if (
        not _TICKER_ONLY_SUFFICES
        or type(body) is not dict
        or len(body) != 2
        or not _TICKER_ONLY.issuperset(body)
    ):
        return None
    ticker, features = body["ticker"], body["features"]
    if type(ticker) is not str or type(features) not in (dict, list):
        return None
    checked = tickers.get(ticker)
    if checked is None:
        try:
            checked = _TICKER_CHECK(ticker).upper()
        except ValueError:  # parse_request raises its error
            return None
        if len(tickers) >= _CHECKED_ENTRIES:
            tickers.clear()
        tickers[ticker] = checked
    return PredictRequest(checked, features)


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
    row = Row(request, request_id or request.request_id or request_ids.generate())
    Pipeline(service, capture, challengers, source).run([row], started)
    if row.error is not None:
        raise row.error
    assert row.answer is not None
    return row.answer


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
    _check_unique_ids(body)
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
    results: list[dict[str, Any] | None] = [None] * len(items)
    rows: list[Row] = []
    tickers: dict[str, str] = {}
    for index, raw in enumerate(items):
        rid = request_ids.for_item(batch_id, index, raw)
        try:
            rows.append(Row(parse_request(raw, tickers), rid, index))
        except TickerserveError as exc:
            results[index] = _failure(index, rid, exc)
    explained = sum(1 for row in rows if row.request.explain is not None)
    if explained > MAX_EXPLAINED_ITEMS:
        raise PayloadTooLarge(
            f"{explained} items ask for an explanation; a batch may ask for at most "
            f"{MAX_EXPLAINED_ITEMS} (send the others without explain, or in another batch)",
            code="too_many_explanations",
        )
    Pipeline(service, capture, challengers, source).run(rows, started)
    for row in rows:
        if row.answer is not None:
            results[row.index] = {"index": row.index, **row.answer}
        else:
            assert row.error is not None
            results[row.index] = _failure(row.index, row.request_id, row.error)
    failed = sum(1 for r in results if r is not None and "error" in r)
    return {
        "request_id": batch_id,
        "results": results,
        "succeeded": len(items) - failed,
        "failed": failed,
    }


def _check_unique_ids(body: Any) -> None:
    """Request ids are unique per served row: a batch naming one twice is refused whole (one
    outcome would score every row that carries it)."""
    items = body.get("items") if isinstance(body, dict) else None
    repeated = request_ids.duplicate_ids(items)
    if repeated:
        shown = ", ".join(repeated[:5]) + (" ..." if len(repeated) > 5 else "")
        raise BadRequest(
            f"request_id must be unique within a batch; repeated: {shown}",
            code="duplicate_request_id",
        )


def _failure(index: int, request_id: str, error: TickerserveError) -> dict[str, Any]:
    return {"index": index, "request_id": request_id, **error.to_body()}
