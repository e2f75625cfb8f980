"""OpenAPI descriptions of the HTTP API: plain JSON Schema dicts passed to the route decorators.

The API validates bodies itself (no pydantic in the Lambda), so Powertools cannot derive the
request and response schemas from type hints; they are written out here instead. Building
these dicts is the only cost in Lambda; the document itself is generated only when docs are
enabled (the local server).
"""

from __future__ import annotations

from typing import Any

from tickerserve.contract import GATEWAY_ERRORS, LIMITS, NAMES, OUTCOME, PREDICT, WARNINGS, Field
from tickerserve.http.pagination import TOKEN_PATTERN
from tickerserve.members.kinds import KINDS

JSON = "application/json"


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    # Powertools' schema model takes one "type" string, so "or null" is spelled anyOf.
    return {"anyOf": [schema, {"type": "null"}]}


EXAMPLE_FEATURES: dict[str, float] = {
    "rsi_14": 61.2,
    "iv_rank": 0.42,
    "iv_percentile": 0.55,
    "hv_20": 0.21,
    "atr_pct": 0.018,
    "ret_5d": 0.012,
    "ret_20d": -0.034,
    "volume_z": 1.3,
    "skew_25d": -0.05,
    "term_slope": 0.02,
    "put_call_ratio": 0.87,
    "vix_level": 17.4,
}

ERROR: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "examples": ["unknown_ticker"]},
                "message": {"type": "string"},
                "features": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The offending feature names, when features were wrong.",
                },
            },
        }
    },
}


def _field_schema(field: Field, *, required: bool) -> dict[str, Any]:
    if field.name_rule is not None:
        schema: dict[str, Any] = {"type": "string", "pattern": field.name_rule.json_pattern}
        if not required:  # an optional field may be null: the server reads it as absent
            schema = nullable(schema)
    else:
        schema = dict(field.schema or {})
    return {**schema, "description": field.description}


def _not_together(group: tuple[str, ...]) -> dict[str, Any]:
    """JSON Schema for "these fields are not all given" (null counts as not given)."""
    return {
        "not": {
            "required": list(group),
            "properties": {name: {"not": {"type": "null"}} for name in group},
        }
    }


# Built from contract.json, like the runtime's checks: the patterns a schema-driven client
# (or fuzzer) reads are the ones the server applies.
PREDICT_REQUEST: dict[str, Any] = {
    "title": "PredictRequest",
    "type": "object",
    "required": list(PREDICT.required),
    "additionalProperties": False,
    "properties": {
        name: _field_schema(field, required=name in PREDICT.required)
        for name, field in PREDICT.fields.items()
    },
    "allOf": [_not_together(group) for group in PREDICT.mutually_exclusive],
}

MODEL_REF: dict[str, Any] = {
    "type": "object",
    "required": ["name", "version", "alias"],
    "properties": {
        "name": {"type": "string", "examples": ["etfs/SMH"]},
        "version": {"type": "string", "examples": ["1.0.0"]},
        "alias": {**nullable({"type": "string"}), "examples": ["production"]},
    },
}

# An answer's warnings, built from contract.json's answers.warnings (codes and meaning).
WARNING: dict[str, Any] = {
    "title": "Warning",
    "type": "object",
    "required": ["feature", "code", "value", "range"],
    "properties": {
        "feature": {"type": "string", "examples": ["rsi_14"]},
        "code": {
            "type": "string",
            "enum": list(WARNINGS.descriptions),
            "description": "; ".join(f"{c}: {d}" for c, d in WARNINGS.descriptions.items()),
        },
        "value": {
            **nullable({"type": "number"}),
            "description": "The value as the model used it (null: missing).",
        },
        "range": {
            **nullable(
                {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
            ),
            "description": "[lo, hi]: the version's range for the feature (null: the reference "
            "had no value for it).",
        },
    },
}

_ANSWER_COMMON: dict[str, Any] = {
    "request_id": {"type": "string", "description": "X-Request-Id, request_id or generated."},
    "ticker": {"type": "string"},
    "model": MODEL_REF,
    "signal": {
        "type": "string",
        "description": "The signal that answered: the one named, else the ticker's default.",
        "examples": ["strategy"],
    },
    "timeframe": {"type": "string", "description": "Present when the request named one."},
    "warnings": {
        "type": "array",
        "items": WARNING,
        "description": WARNINGS.about,
        "examples": [
            [{"feature": "rsi_14", "code": "out_of_range", "value": 140.2, "range": [18.2, 83.9]}]
        ],
    },
}

EXPLANATION: dict[str, Any] = {
    "title": "Explanation",
    "type": "object",
    "required": ["space", "base", "output", "contributions"],
    "description": "Present when the request asked (explain): exact path-dependent TreeSHAP "
    "contributions to the predicted class (classifiers) or the value (regressors). base plus "
    "the contributions of all features is output, the model's output in space.",
    "properties": {
        "space": {
            "type": "string",
            "enum": ["margin", "probability", "value"],
            "description": "probability: a forest's class probability; value: a regressor's "
            "prediction; margin: before the link (log-odds, a class's raw score).",
        },
        "base": {"type": "number", "description": "The expected output over the training data."},
        "output": {"type": "number", "description": "base + every feature's contribution."},
        "contributions": {
            "type": "object",
            "additionalProperties": {"type": "number"},
            "description": "The top k features by absolute contribution, largest first.",
            "examples": [{"iv_rank": 0.412, "rsi_14": -0.187, "vix_level": 0.093}],
        },
    },
}

CLASSIFICATION_PREDICTION: dict[str, Any] = {
    "title": "ClassPrediction",
    "type": "object",
    "required": ["request_id", "ticker", "model", "prediction", "confidence", "probabilities"],
    "properties": {
        **_ANSWER_COMMON,
        "prediction": {"type": "string", "examples": ["IRON_CONDOR"]},
        "confidence": {"type": "number", "description": "Probability of the predicted class."},
        "probabilities": {
            "type": "object",
            "additionalProperties": {"type": "number"},
            "description": "Every class label with its probability, in the model's order.",
        },
        "agreement": {
            "type": "number",
            "description": "Weighted ensembles only: the share of members whose own label is "
            "the predicted one.",
        },
        "explanation": EXPLANATION,
        "action": {
            "type": "integer",
            "description": "Discrete policies only: the deterministic action's index.",
        },
        "label": {
            "type": "string",
            "description": "Discrete policies whose actions are named: the action's name.",
        },
        "value": {"type": "number", "description": "Policies only: the critic's value."},
    },
}

REGRESSION_PREDICTION: dict[str, Any] = {
    "title": "ValuePrediction",
    "type": "object",
    "required": ["ticker", "model", "prediction"],
    "properties": {
        **_ANSWER_COMMON,
        "prediction": {
            "oneOf": [
                {"type": "number"},
                {"type": "object", "additionalProperties": {"type": "number"}},
            ],
            "examples": [0.0123],
            "description": "A regression model's value (no probabilities, no confidence); a "
            "network with several outputs answers each by name.",
        },
        "explanation": EXPLANATION,
    },
}

ACTION_PREDICTION: dict[str, Any] = {
    "title": "ActionPrediction",
    "type": "object",
    "required": ["ticker", "model", "action"],
    "properties": {
        **_ANSWER_COMMON,
        "action": {
            "type": "array",
            "items": {"type": "number"},
            "description": "A box policy's deterministic action, clipped to the space's bounds "
            "(one number per action dimension).",
        },
        "value": {"type": "number", "description": "The critic's value."},
    },
}

PREDICTION: dict[str, Any] = {
    "title": "Prediction",
    "description": "A classifier's label with its probabilities (a discrete policy's action "
    "too), a regressor's value, or a box policy's action.",
    "oneOf": [CLASSIFICATION_PREDICTION, REGRESSION_PREDICTION, ACTION_PREDICTION],
}

BATCH_REQUEST: dict[str, Any] = {
    "title": "BatchRequest",
    "type": "object",
    "required": ["items"],
    "additionalProperties": False,
    "properties": {
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": LIMITS.batch_items,
            "items": PREDICT_REQUEST,
        },
        "request_id": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": "The batch's id (items without their own get {id}-{index}); a string "
            "that is no usable request id gets a generated one.",
        },
    },
}

BATCH_RESPONSE: dict[str, Any] = {
    "title": "BatchResponse",
    "type": "object",
    "required": ["request_id", "results", "succeeded", "failed"],
    "properties": {
        "request_id": {"type": "string"},
        "results": {
            "type": "array",
            "description": "One entry per item, in order: a prediction or an error.",
            "items": {
                "oneOf": [
                    {**CLASSIFICATION_PREDICTION, "title": "BatchClassPrediction"},
                    {**REGRESSION_PREDICTION, "title": "BatchValuePrediction"},
                    {**ACTION_PREDICTION, "title": "BatchActionPrediction"},
                    {**ERROR, "title": "BatchError"},
                ],
                "required": ["index", "request_id"],
                "properties": {"index": {"type": "integer"}, "request_id": {"type": "string"}},
            },
        },
        "succeeded": {"type": "integer"},
        "failed": {"type": "integer"},
    },
}

# Built from contract.json like PredictRequest. "Exactly one of label and value" is the
# server's per-item check (invalid_outcome), left out of the schema: an item that breaks it is
# answered in the 200's results, not with a 4xx.
OUTCOME_ITEM: dict[str, Any] = {
    "title": "Outcome",
    "type": "object",
    "required": list(OUTCOME.required),
    "additionalProperties": False,
    "properties": {
        name: _field_schema(field, required=name in OUTCOME.required)
        for name, field in OUTCOME.fields.items()
    },
}

OUTCOMES_REQUEST: dict[str, Any] = {
    "title": "OutcomesRequest",
    "type": "object",
    "required": ["outcomes"],
    "additionalProperties": False,
    "properties": {
        "outcomes": {
            "type": "array",
            "minItems": 1,
            "maxItems": LIMITS.outcome_items,
            "items": OUTCOME_ITEM,
        }
    },
}

OUTCOMES_RESPONSE: dict[str, Any] = {
    "title": "OutcomesResponse",
    "type": "object",
    "required": ["results", "stored", "unchanged", "failed"],
    "properties": {
        "results": {
            "type": "array",
            "description": "One entry per outcome, in order: its status or its error.",
            "items": {
                "type": "object",
                "required": ["index"],
                "properties": {
                    "index": {"type": "integer"},
                    "request_id": {"type": "string"},
                    "status": {
                        "type": "string",
                        "enum": ["stored", "unchanged"],
                        "description": "unchanged: the same batch was received today already",
                    },
                    "error": ERROR["properties"]["error"],
                },
            },
        },
        "stored": {"type": "integer"},
        "unchanged": {"type": "integer"},
        "failed": {"type": "integer"},
    },
}

_ALIASES: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "description": "alias -> version",
}

_NULLABLE_STRING = nullable({"type": "string"})

MODELS: dict[str, Any] = {
    "title": "ModelsPage",
    "type": "object",
    "required": ["revision", "updated_at", "routes", "models", "next"],
    "properties": {
        "revision": {"type": "integer"},
        "updated_at": {"type": "string"},
        "routes": {
            "type": "array",
            "description": "Ticker routes in order: each ticker's signals, each with its "
            "default route, then its timeframes; then asset-class fallbacks (ticker null); then "
            "models no route names (ticker, signal and asset_class null).",
            "items": {
                "type": "object",
                "required": [
                    "ticker",
                    "signal",
                    "timeframe",
                    "asset_class",
                    "model",
                    "via_fallback",
                    "default",
                ],
                "properties": {
                    "ticker": _NULLABLE_STRING,
                    "signal": _NULLABLE_STRING,
                    "timeframe": _NULLABLE_STRING,
                    "asset_class": _NULLABLE_STRING,
                    "model": {
                        **_NULLABLE_STRING,
                        "description": "null: the ticker's asset class has no fallback model",
                    },
                    "via_fallback": {"type": "boolean"},
                    "default": {
                        "type": "boolean",
                        "description": "The route a request naming no signal nor timeframe gets.",
                    },
                },
            },
        },
        "models": {
            "type": "array",
            "description": "The models this page's routes name, with their aliases.",
            "items": {
                "type": "object",
                "required": ["name", "aliases"],
                "properties": {
                    "name": {"type": "string"},
                    "aliases": _ALIASES,
                    "aliases_truncated": {
                        "type": "boolean",
                        "description": "Present when the aliases alone would not fit a page.",
                    },
                },
            },
        },
        "next": {
            **_NULLABLE_STRING,
            "description": "Pass as ?next= for the following page; null on the last page.",
        },
    },
}

# Query and path parameters, with the server's patterns. Powertools derives parameters from
# typed handler arguments (pydantic, which the Lambda never imports), so the local server's
# document gets these instead (``Api`` with docs=True).
PARAMETERS: dict[str, list[dict[str, Any]]] = {
    "/models": [
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "description": f"Route rows per page (default {LIMITS.models_page_default}); a "
            f"page is also never larger than {LIMITS.models_page_bytes // 1024 // 1024} MiB.",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": LIMITS.models_page_max,
                "default": LIMITS.models_page_default,
            },
        },
        {
            "name": "next",
            "in": "query",
            "required": False,
            "description": "The next token of the previous page (opaque: pass it back as is).",
            "schema": {"type": "string", "pattern": f"^(?:{TOKEN_PATTERN})$"},
        },
    ],
    "/models/{ticker}": [
        {
            "name": "ticker",
            "in": "path",
            "required": True,
            "description": "Case-insensitive, e.g. SMH or aapl.",
            "schema": {"type": "string", "pattern": NAMES["ticker"].json_pattern},
        },
        {
            "name": "signal",
            "in": "query",
            "required": False,
            "description": "Describe the ticker's model for this signal (default: its own).",
            "schema": {"type": "string", "pattern": NAMES["signal"].json_pattern},
        },
        {
            "name": "timeframe",
            "in": "query",
            "required": False,
            "description": "Describe the ticker's model for this timeframe (e.g. h1).",
            "schema": {"type": "string", "pattern": NAMES["timeframe"].json_pattern},
        },
    ],
}

MODEL_DETAIL: dict[str, Any] = {
    "title": "ModelDetail",
    "type": "object",
    "properties": {
        "ticker": {"type": "string"},
        "asset_class": {"type": "string"},
        "via_fallback": {"type": "boolean"},
        "signal": {"type": "string", "description": "The signal described."},
        "default_signal": {
            "type": "string",
            "description": "The signal that answers requests naming none.",
        },
        "signals": {
            "type": "object",
            "description": "Every signal the ticker answers on: signal -> its default model "
            "(null: none, name a timeframe) and its timeframes (timeframe -> model).",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "model": nullable({"type": "string"}),
                    "timeframes": {"type": "object", "additionalProperties": {"type": "string"}},
                    "via_fallback": {"type": "boolean"},
                },
            },
        },
        "timeframe": {
            **nullable({"type": "string"}),
            "description": "The timeframe described (null: the signal's default route).",
        },
        "timeframes": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "timeframe -> model, every timeframe the described signal routes.",
        },
        "model": MODEL_REF,
        "aliases": _ALIASES,
        "capture": {
            "type": "object",
            "properties": {"sample": {"type": "number", "description": "Share captured."}},
        },
        "shadow": nullable(
            {
                "type": "object",
                "description": "The challenger alias scored beside the answer (and its version).",
                "properties": {
                    "alias": {"type": "string"},
                    "sample": {"type": "number"},
                    "version": nullable({"type": "string"}),
                },
            }
        ),
        "canary": nullable(
            {
                "type": "object",
                "description": "The alias answering a share (weight) of requests.",
                "properties": {
                    "alias": {"type": "string"},
                    "weight": {"type": "number"},
                    "version": nullable({"type": "string"}),
                },
            }
        ),
        "task": {"type": "string", "enum": ["classification", "regression"]},
        "ensemble": {
            "type": "object",
            "description": "How members combine: single, weighted_average or stacking.",
            "properties": {
                "method": {"type": "string"},
                "members": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "kind": {"type": "string", "enum": list(KINDS)},
                            "estimator": nullable({"type": "string"}),
                            "weight": {"type": "number"},
                        },
                    },
                },
                "meta_learner": {
                    "type": "object",
                    "properties": {"estimator": {"type": "string"}, "link": {"type": "string"}},
                },
            },
        },
        "accepts_missing": {
            "type": "boolean",
            "description": "False when the original estimator refused missing values (null).",
        },
        "model_type": {"type": "string"},
        "feature_names": {"type": "array", "items": {"type": "string"}},
        "selected_features": nullable({"type": "array", "items": {"type": "integer"}}),
        "required_features": {"type": "array", "items": {"type": "string"}},
        "classes": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Class labels in output order (empty for a regression model).",
        },
        "network": nullable(
            {
                "type": "object",
                "description": "A network's input and answer: input window (features as "
                "shape[0] rows, oldest first) or observation (of shape), named outputs, a "
                "policy's action space, whether the critic's value is answered.",
                "properties": {
                    "input": {"type": "string", "enum": ["window", "observation"]},
                    "shape": {"type": "array", "items": {"type": "integer"}},
                    "outputs": {"type": "array", "items": {"type": "string"}},
                    "policy": nullable({"type": "object"}),
                    "value": {"type": "boolean"},
                },
            }
        ),
        "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
        "training": {"type": "object"},
        "created_at": {"type": "string"},
        "metadata_sha256": {"type": "string"},
    },
}

_BUDGET: dict[str, Any] = {
    "type": "object",
    "properties": {"used_bytes": {"type": "integer"}, "budget_bytes": {"type": "integer"}},
}

HEALTH: dict[str, Any] = {
    "title": "Health",
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "cold": {"type": "boolean", "description": "True on the first invocation only."},
        "store": {"type": "string"},
        "registry": nullable(
            {
                "type": "object",
                "properties": {
                    "revision": {"type": "integer"},
                    "updated_at": {"type": "string"},
                    "models": {"type": "integer"},
                    "tickers": {"type": "integer"},
                    "age_seconds": {
                        **nullable({"type": "number"}),
                        "description": "Seconds since this sandbox last read the registry "
                        "successfully (RegistryStaleness).",
                    },
                },
            }
        ),
        "loaded_models": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "version": {"type": "string"},
                    "bytes": {"type": "integer"},
                    "fast_path": {
                        "type": "boolean",
                        "description": "One-row requests use LightGBM's single-row fast path.",
                    },
                    "warnings": {
                        "type": "boolean",
                        "description": "The version has feature ranges: its answers carry "
                        "warnings.",
                    },
                },
            },
        },
        "memory": _BUDGET,
        "disk": _BUDGET,
        "counters": {"type": "object", "additionalProperties": {"type": "integer"}},
        "uptime_seconds": {"type": "number"},
        "error": ERROR["properties"]["error"],
    },
}


def ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": ERROR}}}


def request_body(schema: dict[str, Any], examples: dict[str, Any]) -> dict[str, Any]:
    """An ``openapi_extensions`` entry that sets the operation's requestBody."""
    return {
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": schema, "examples": examples}},
        }
    }


def with_gateway_errors(responses: dict[int, Any]) -> dict[int, Any]:
    """``responses`` plus what only the deployed API Gateway answers (from contract.json)."""
    out = dict(responses)
    for status in sorted({e.status for e in GATEWAY_ERRORS if e.status is not None}):
        causes = "; ".join(f"{e.code}: {e.when}" for e in GATEWAY_ERRORS if e.status == status)
        note = f"Deployed API only (API Gateway, before the function): {causes}"
        if status in out:
            out[status] = {**out[status], "description": f"{out[status]['description']}. {note}"}
        else:
            out[status] = error(note)
    return out


_NOT_JSON = error("Content-Type is present and not JSON (application/json)")
_STORAGE_DOWN = error(
    "Nothing good is held for the request: the model store is unreachable or too slow "
    "(storage_unavailable, with Retry-After), the version the registry names is missing, "
    "fails verification or cannot be loaded (integrity_error, invalid_model), or the store "
    "holds a seed project's own registry that `tickerserve import-seed` has not converted yet "
    "(registry_needs_import)"
)

PREDICT_RESPONSES: dict[int, Any] = with_gateway_errors(
    {
        200: ok("A label with every class probability, or a regression value", PREDICTION),
        400: error(
            "Bad JSON, wrong fields or types, missing or extra features, NaN, null for a model "
            "that refuses missing values, a ticker without a default route and no timeframe, "
            "an explanation asked of a model that has no exact one (explain_unsupported)"
        ),
        404: error(
            "Unknown ticker, alias, version, timeframe (unknown_timeframe) or signal "
            "(unknown_signal: the message lists the ticker's signals)"
        ),
        413: error("Body over 6 MiB (body_too_large)"),
        415: _NOT_JSON,
        503: _STORAGE_DOWN,
    }
)
BATCH_RESPONSES: dict[int, Any] = with_gateway_errors(
    {
        200: ok("Per-item predictions and per-item errors", BATCH_RESPONSE),
        400: error("The body is not a batch"),
        413: error(
            f"More than {LIMITS.batch_items} items (batch_too_large), more than "
            f"{LIMITS.explained_items} items asking for an explanation (too_many_explanations), "
            "or a body over 6 MiB (body_too_large)"
        ),
        415: _NOT_JSON,
        503: _STORAGE_DOWN,
    }
)
OUTCOMES_RESPONSES: dict[int, Any] = with_gateway_errors(
    {
        200: ok(
            "Per-outcome status (stored or unchanged) and per-outcome errors", OUTCOMES_RESPONSE
        ),
        400: error('The body is not {"outcomes": [...]}'),
        413: error("More than 1000 outcomes, or a body over 6 MiB"),
        415: _NOT_JSON,
        503: ok("The store failed the write; re-send (nothing was stored)", OUTCOMES_RESPONSE),
    }
)
MODELS_RESPONSES: dict[int, Any] = with_gateway_errors(
    {
        200: ok("One page of ticker routes and the aliases of the models they name", MODELS),
        400: error(
            f"limit is not an integer from 1 to {LIMITS.models_page_max} (invalid_limit), or "
            "next is not a token from an earlier page (invalid_next)"
        ),
        503: _STORAGE_DOWN,
    }
)
MODEL_RESPONSES: dict[int, Any] = with_gateway_errors(
    {
        200: ok(
            "The model serving the ticker (or ?signal=, ?timeframe=): task, members, features, "
            "classes, metrics, and every signal x timeframe the ticker routes",
            MODEL_DETAIL,
        ),
        400: error("Not a valid ticker, signal or timeframe"),
        404: error(
            "No model serves this ticker (or this signal or timeframe of it: unknown_signal, "
            "unknown_timeframe)"
        ),
        503: _STORAGE_DOWN,
    }
)
HEALTH_RESPONSES: dict[int, Any] = with_gateway_errors(
    {
        200: ok("The registry is readable", HEALTH),
        503: ok("The model store is unreachable", HEALTH),
    }
)

PREDICT_BODY = request_body(
    PREDICT_REQUEST,
    {
        "etf": {
            "summary": "An ETF served by its own model",
            "value": {"ticker": "SMH", "features": EXAMPLE_FEATURES},
        },
        "stock": {
            "summary": "A stock served by the universal model, features as a list",
            "value": {"ticker": "AAPL", "features": list(EXAMPLE_FEATURES.values())},
        },
        "signal": {
            "summary": "Naming the signal (which of the ticker's models; default: its own)",
            "value": {"ticker": "SMH", "signal": "strategy", "features": EXAMPLE_FEATURES},
        },
        "explained": {
            "summary": "With an explanation: the five features that moved the answer most",
            "value": {"ticker": "SMH", "features": EXAMPLE_FEATURES, "explain": 5},
        },
    },
)
BATCH_BODY = request_body(
    BATCH_REQUEST,
    {
        "batch": {
            "summary": "Two tickers, one unknown (answered with a per-item error)",
            "value": {
                "items": [
                    {"ticker": "SPY", "features": EXAMPLE_FEATURES},
                    {"ticker": "NOPE", "features": EXAMPLE_FEATURES},
                ]
            },
        }
    },
)
OUTCOMES_BODY = request_body(
    OUTCOMES_REQUEST,
    {
        "outcomes": {
            "summary": "A realized label for a classifier's prediction, a value for a regressor's",
            "value": {
                "outcomes": [
                    {
                        "request_id": "order-1842",
                        "label": "BULL_PUT_SPREAD",
                        "observed_at": "2026-12-01T21:00:00Z",
                    },
                    {"request_id": "vol-2026-12-01", "value": 0.0123},
                ]
            },
        }
    },
)
