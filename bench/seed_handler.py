"""The baseline: a prediction handler written the way the seed projects wrote theirs.

Module-level boto3 client; on the first request for a model, its three artifacts are
downloaded one after the other to /tmp, then ``joblib.load`` (which imports lightgbm and
scikit-learn while unpickling) and ``pickle.load`` of the ``LabelEncoder``; the loaded objects
stay in an unbounded dict. Each request: ``json.loads`` the body, order the features by
``feature_names.json``, ``predict_proba`` + ``inverse_transform``, ``json.dumps`` an answer
shaped like tickerserve's.

It is a generous baseline: numpy input (no pandas DataFrame), one ``predict_proba`` call per
request (no extra ``predict``), no logging, no input validation beyond what Python raises.
Configured by SEED_BUCKET, SEED_TMP (download folder) and SEED_ETFS (tickers with their own
model; every other ticker uses the universal model).
"""

from __future__ import annotations

import json
import os
import pickle
from typing import Any

import boto3
import joblib
import numpy as np

BUCKET = os.environ["SEED_BUCKET"]
TMP = os.environ.get("SEED_TMP", "/tmp")
ETFS = frozenset(t for t in os.environ.get("SEED_ETFS", "").split(",") if t)
FILES = ("model.joblib", "label_encoder.pkl", "feature_names.json")

s3 = boto3.client("s3")
_models: dict[str, tuple[Any, Any, list[str]]] = {}


def model_prefix(ticker: str) -> str:
    return f"etfs/{ticker}/production" if ticker in ETFS else "stocks/universal/production"


def load_model(prefix: str) -> tuple[Any, Any, list[str]]:
    """Download (sequentially) and unpickle a model's artifacts once; keep them forever."""
    cached = _models.get(prefix)
    if cached is not None:
        return cached
    local = os.path.join(TMP, prefix.replace("/", "__"))
    os.makedirs(local, exist_ok=True)
    for name in FILES:
        s3.download_file(BUCKET, f"{prefix}/{name}", os.path.join(local, name))
    model = joblib.load(os.path.join(local, "model.joblib"))
    with open(os.path.join(local, "label_encoder.pkl"), "rb") as handle:
        encoder = pickle.load(handle)
    with open(os.path.join(local, "feature_names.json")) as handle:
        names = json.load(handle)
    _models[prefix] = (model, encoder, names)
    return _models[prefix]


def _answer(ticker: str, prefix: str, encoder: Any, proba: np.ndarray) -> dict[str, Any]:
    best = int(np.argmax(proba))
    label = encoder.inverse_transform([best])[0]
    return {
        "ticker": ticker,
        "model": {"name": prefix.rsplit("/", 1)[0], "version": "production", "alias": None},
        "prediction": str(label),
        "confidence": float(proba[best]),
        "probabilities": {str(c): float(p) for c, p in zip(encoder.classes_, proba, strict=True)},
    }


def _ok(body: Any) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``POST /predict`` for one ticker."""
    try:
        body = json.loads(event.get("body") or "{}")
        ticker = str(body["ticker"]).upper()
        prefix = model_prefix(ticker)
        model, encoder, names = load_model(prefix)
        features = body["features"]
        row = np.array([[float(features[n]) for n in names]], dtype=np.float64)
        proba = model.predict_proba(row)[0]
        return _ok(_answer(ticker, prefix, encoder, proba))
    except Exception as exc:
        return {"statusCode": 500, "body": json.dumps({"error": str(exc)})}


def batch_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Not in the seeds: the best a seed-style batch endpoint could do (rows grouped by model,
    one vectorized ``predict_proba`` and ``inverse_transform`` per model)."""
    try:
        items = json.loads(event.get("body") or "{}")["items"]
        groups: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            groups.setdefault(model_prefix(str(item["ticker"]).upper()), []).append(index)
        results: list[Any] = [None] * len(items)
        for prefix, indices in groups.items():
            model, encoder, names = load_model(prefix)
            rows = np.array(
                [[float(items[i]["features"][n]) for n in names] for i in indices],
                dtype=np.float64,
            )
            proba = model.predict_proba(rows)
            labels = encoder.inverse_transform(proba.argmax(axis=1))
            for i, p, label in zip(indices, proba, labels, strict=True):
                best = int(np.argmax(p))
                results[i] = {
                    "index": i,
                    "ticker": str(items[i]["ticker"]).upper(),
                    "model": {"name": prefix.rsplit("/", 1)[0], "version": "production"},
                    "prediction": str(label),
                    "confidence": float(p[best]),
                    "probabilities": {
                        str(c): float(x) for c, x in zip(encoder.classes_, p, strict=True)
                    },
                }
        return _ok({"results": results, "succeeded": len(items), "failed": 0})
    except Exception as exc:
        return {"statusCode": 500, "body": json.dumps({"error": str(exc)})}
