"""Domain errors: each carries the HTTP status and the stable code a client sees, and one JSON
body shape for every route."""

from __future__ import annotations

import pytest

from tickerserve.errors import (
    BadRequest,
    ConfigError,
    Conflict,
    IntegrityError,
    InvalidModel,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    StorageUnavailable,
    TickerserveError,
    UnsupportedMediaType,
)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (BadRequest, 400, "bad_request"),
        (NotFound, 404, "not_found"),
        (UnsupportedMediaType, 415, "unsupported_media_type"),
        (PayloadTooLarge, 413, "payload_too_large"),
        (Conflict, 409, "conflict"),
        (StorageUnavailable, 503, "storage_unavailable"),
        (IntegrityError, 503, "integrity_error"),
        (InvalidModel, 503, "invalid_model"),
        (ConfigError, 500, "config_error"),
        (TickerserveError, 500, "internal_error"),
    ],
)
def test_each_error_has_its_status_and_default_code(
    error: type[TickerserveError], status: int, code: str
):
    raised = error("what went wrong")
    assert (raised.status, raised.code, raised.message, str(raised)) == (
        status,
        code,
        "what went wrong",
        "what went wrong",
    )
    assert raised.to_body() == {"error": {"code": code, "message": "what went wrong"}}


def test_a_specific_code_overrides_the_class_default_for_that_error_only():
    specific = NotFound("unknown ticker 'GME'", code="unknown_ticker")
    assert specific.code == "unknown_ticker" and specific.status == 404
    assert NotFound("x").code == "not_found"  # the class keeps its default


def test_the_body_names_offending_features_only_when_there_are_some():
    missing = BadRequest("missing features: a, b", code="missing_features", features=["a", "b"])
    assert missing.to_body() == {
        "error": {
            "code": "missing_features",
            "message": "missing features: a, b",
            "features": ["a", "b"],
        }
    }
    assert "features" not in BadRequest("x", features=[]).to_body()["error"]


def test_retry_after_and_allowed_methods_travel_with_the_error():
    unavailable = StorageUnavailable("GET registry timed out", retry_after=7)
    assert unavailable.retry_after == 7
    assert BadRequest("x").retry_after is None
    refused = MethodNotAllowed("GET /predict: use POST", allow=("POST", "OPTIONS"))
    assert (refused.status, refused.code, refused.allow) == (
        405,
        "method_not_allowed",
        ("POST", "OPTIONS"),
    )
    assert refused.to_body()["error"]["message"] == "GET /predict: use POST"


def test_errors_are_caught_as_their_base_class():
    with pytest.raises(TickerserveError) as caught:
        raise IntegrityError("model.txt does not match its sha256")
    assert caught.value.code == "integrity_error"
