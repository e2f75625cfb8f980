"""``serve --auth iam``'s signature check: requests botocore signs for API Gateway
(``execute-api``) or a function URL (``lambda``) pass; anything else is refused as the deployed
REST API refuses it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import ReadOnlyCredentials

from tickerserve.cli.sigv4 import SignatureCheck

KEY = ReadOnlyCredentials("AKIDLOCALEXAMPLE", "local-secret", "session-token")
HOST = "127.0.0.1:8000"
BODY = b'{"ticker": "SMH", "features": [61.2, 0.42]}'


def signed(
    method: str = "POST",
    target: str = "/predict",
    body: bytes = BODY,
    *,
    service: str = "execute-api",
    credentials: ReadOnlyCredentials = KEY,
    signer: type[SigV4Auth] = SigV4Auth,
) -> list[tuple[str, str]]:
    """The headers a client sends for a request signed as botocore signs it."""
    request = AWSRequest(
        method=method,
        url=f"http://{HOST}{target}",
        data=body,
        headers={"Content-Type": "application/json", "User-Agent": "trading-bot/2.3"},
    )
    signer(credentials, service, "eu-west-1").add_auth(request)
    return [("Host", HOST), *request.headers.items()]


def refusal(
    headers: list[tuple[str, str]],
    *,
    method: str = "POST",
    target: str = "/predict",
    body: bytes = BODY,
    now: datetime | None = None,
) -> tuple[str, str] | None:
    """(response type, message) of the check's refusal, None when it lets the request in."""
    check = SignatureCheck(KEY, clock=lambda: now or datetime.now(UTC))
    found = check.check(method, target, headers, body)
    return None if found is None else (found.response_type, found.message)


@pytest.mark.parametrize("service", ["execute-api", "lambda"])
def test_a_request_signed_for_either_front_door_passes(service):
    assert refusal(signed(service=service)) is None


def test_query_strings_and_gets_are_signed_too():
    headers = signed("GET", "/models?limit=2&next=abc", b"")
    assert refusal(headers, method="GET", target="/models?limit=2&next=abc", body=b"") is None
    # The same signature does not cover another page
    found = refusal(headers, method="GET", target="/models?limit=2&next=abd", body=b"")
    assert found is not None and found[0] == "INVALID_SIGNATURE"


def test_an_unsigned_request_is_missing_its_authentication_token():
    headers = [("Host", HOST), ("Content-Type", "application/json")]
    assert refusal(headers) == ("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"body": b'{"ticker": "QQQ"}'}, "signature we calculated does not match"),
        ({"method": "PUT"}, "signature we calculated does not match"),
        ({"target": "/outcomes"}, "signature we calculated does not match"),
    ],
)
def test_a_signature_covers_method_path_and_body(change, message):
    found = refusal(signed(), **change)
    assert found is not None
    assert found[0] == "INVALID_SIGNATURE" and message in found[1]


def test_another_secret_key_or_another_access_key_is_refused():
    wrong_secret = ReadOnlyCredentials(KEY.access_key, "not-the-secret", KEY.token)
    found = refusal(signed(credentials=wrong_secret))
    assert found is not None and "signature we calculated does not match" in found[1]
    someone_else = ReadOnlyCredentials("AKIDSOMEONEELSE", KEY.secret_key, KEY.token)
    found = refusal(signed(credentials=someone_else))
    assert found is not None and "security token included in the request is invalid" in found[1]


def test_the_session_token_must_be_the_keys_own():
    other_token = ReadOnlyCredentials(KEY.access_key, KEY.secret_key, "another-session")
    found = refusal(signed(credentials=other_token))
    assert found == ("INVALID_SIGNATURE", "The security token included in the request is invalid.")
    no_token = ReadOnlyCredentials(KEY.access_key, KEY.secret_key, None)
    assert refusal(signed(credentials=no_token)) == found


def test_a_signature_for_another_service_is_refused():
    found = refusal(signed(service="s3"))
    assert found is not None
    assert "scoped to correct service: execute-api or lambda" in found[1]


@pytest.mark.parametrize(
    ("minutes", "message"),
    [(6, "Signature expired"), (-6, "Signature not yet current")],
)
def test_a_signature_older_or_newer_than_five_minutes_is_refused(minutes, message):
    headers = signed()
    found = refusal(headers, now=datetime.now(UTC) + timedelta(minutes=minutes))
    assert found is not None and message in found[1]
    assert refusal(headers, now=datetime.now(UTC) + timedelta(minutes=minutes * 4 / 6)) is None


def test_headers_other_signers_sign_are_checked_too():
    # Given a signer that also signs User-Agent (botocore leaves it out; awscurl-style signers
    # may include it)
    class SignsEverything(SigV4Auth):
        def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
            headers = HTTPHeaders()
            for name, value in request.headers.items():
                headers[name.lower()] = value
            headers["host"] = HOST
            return headers

    headers = signed(signer=SignsEverything)
    assert "user-agent" in dict(headers)["Authorization"]
    assert refusal(headers) is None
    # Then changing a signed header breaks the signature
    tampered = [(n, "evil/1.0" if n == "User-Agent" else v) for n, v in headers]
    found = refusal(tampered)
    assert found is not None and "does not match" in found[1]


def test_a_declared_payload_hash_must_be_the_bodys():
    headers = [*signed(), ("X-Amz-Content-SHA256", "0" * 64)]
    found = refusal(headers)
    assert found is not None and "x-amz-content-sha256" in found[1]


def test_a_malformed_authorization_header_is_refused():
    headers = [
        (n, "AWS4-HMAC-SHA256 Credential=x" if n == "Authorization" else v) for n, v in signed()
    ]
    found = refusal(headers)
    assert found is not None and found[0] == "INVALID_SIGNATURE"
    assert "requires 'Credential', 'SignedHeaders' and 'Signature'" in found[1]
