"""SigV4 signature checks for ``tickerserve serve --auth iam``: what API Gateway (service
``execute-api``) and a Lambda function URL (service ``lambda``) check before the function runs.

The local server knows one key pair, the credentials botocore finds (environment variables,
``AWS_PROFILE``, a credentials file such as ``AWS_SHARED_CREDENTIALS_FILE=./keys``), and accepts
a request only when it is signed with that key (and its session token, when it has one), for
either service, within 5 minutes of this machine's clock, with the signature botocore computes
for the same method, path, query, signed headers and body. The region in the signature's
scope is not checked (the local server has none of its own). Each refusal names the API
Gateway response type the deployed REST API answers with, so the local answer is the same
403 ``forbidden`` in the API's error shape.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import ReadOnlyCredentials

SERVICES = ("execute-api", "lambda")
ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=5)  # API Gateway's and Lambda's window for a signature's time
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_PARAMETER = re.compile(r"\s*(Credential|SignedHeaders|Signature)=([^,\s]*)\s*(?:,|$)")


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused, as the API Gateway response type that answers it."""

    response_type: str  # MISSING_AUTHENTICATION_TOKEN, INVALID_SIGNATURE, ...
    message: str


class SignatureCheck:
    """Checks that requests are SigV4-signed with ``credentials``."""

    def __init__(
        self,
        credentials: ReadOnlyCredentials,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.credentials = credentials
        self.clock = clock

    def check(
        self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> Refusal | None:
        """None for a request signed with this key, else why it is refused. ``target`` is the
        request line's path and query, exactly as received."""
        received = HTTPHeaders()
        for name, value in headers:
            received[name.lower()] = value
        authorization = received.get("authorization")
        if not authorization or not authorization.startswith(f"{ALGORITHM} "):
            return Refusal("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
        parameters = dict(_PARAMETER.findall(authorization[len(ALGORITHM) + 1 :]))
        scope = parameters.get("Credential", "").split("/")
        signed = [h for h in parameters.get("SignedHeaders", "").split(";") if h]
        signature = parameters.get("Signature", "")
        if len(scope) != 5 or scope[4] != "aws4_request" or not signed or not signature:
            return _invalid(
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
                "parameters (Credential=KEY/DATE/REGION/SERVICE/aws4_request)"
            )
        access_key, day, region, service, _ = scope
        if not hmac.compare_digest(access_key, self.credentials.access_key):
            return _invalid("The security token included in the request is invalid.")
        if service not in SERVICES:
            return _invalid(
                f"Credential should be scoped to correct service: {' or '.join(SERVICES)}."
            )
        if "host" not in signed:
            return _invalid("'Host' must be a signed header.")
        if missing := [name for name in signed if name not in received]:
            return _invalid(f"signed headers missing from the request: {missing}")
        problem = self._time_problem(received.get("x-amz-date"), day)
        if problem is not None:
            return _invalid(problem)
        if not _same_token(received.get("x-amz-security-token"), self.credentials.token):
            return _invalid("The security token included in the request is invalid.")
        declared = received.get("x-amz-content-sha256")
        if declared is not None and declared != hashlib.sha256(body).hexdigest():
            return _invalid("x-amz-content-sha256 does not match the body's SHA-256")
        expected = _signature(
            self.credentials, service, region, method, target, received, signed, body
        )
        if not hmac.compare_digest(expected, signature):
            return _invalid(
                "The request signature we calculated does not match the signature you "
                "provided. Check your AWS Secret Access Key and signing method."
            )
        return None

    def _time_problem(self, amz_date: str | None, day: str) -> str | None:
        if amz_date is None:
            return "Authorization header requires existence of a 'X-Amz-Date' header."
        try:
            signed_at = datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)
        except ValueError:
            return f"X-Amz-Date {amz_date[:40]!r} is not a YYYYMMDDTHHMMSSZ time"
        if amz_date[:8] != day:
            return "the credential scope's date is not the date of X-Amz-Date"
        now = self.clock()
        if signed_at < now - MAX_SKEW:
            return f"Signature expired: {amz_date} is now earlier than 5 minutes ago."
        if signed_at > now + MAX_SKEW:
            return f"Signature not yet current: {amz_date} is more than 5 minutes ahead."
        return None


class _SignedHeadersOnly(SigV4Auth):
    """botocore's SigV4 arithmetic over exactly the headers the caller signed (botocore itself
    would leave out a few, such as User-Agent, that other signers include)."""

    def __init__(
        self, credentials: ReadOnlyCredentials, service: str, region: str, signed: list[str]
    ) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        headers = HTTPHeaders()
        for name in self._signed:
            for value in request.headers.get_all(name) or ():
                headers[name] = value
        return headers


def _signature(
    credentials: ReadOnlyCredentials,
    service: str,
    region: str,
    method: str,
    target: str,
    received: HTTPHeaders,
    signed: list[str],
    body: bytes,
) -> str:
    host = received["host"]
    request = AWSRequest(method=method, url=f"http://{host}{target}", data=body)
    for name in signed:  # every value of each signed header, in the order received
        for value in received.get_all(name) or ():
            request.headers[name] = value
    request.context["timestamp"] = received["x-amz-date"]
    signer = _SignedHeadersOnly(credentials, service, region, signed)
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


def _same_token(sent: str | None, known: str | None) -> bool:
    """Temporary credentials sign with their session token; long-term keys with none."""
    if not sent or not known:
        return not sent and not known
    return hmac.compare_digest(sent, known)


def _invalid(message: str) -> Refusal:
    return Refusal("INVALID_SIGNATURE", message)
