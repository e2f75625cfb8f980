"""SigV4-signed calls to the API, as a trading bot makes them (botocore, the README's way).

Each caller has its own credentials: predicting and writing outcomes are separate permissions
when deployed, so the loop calls them as two principals.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

# A front door that refuses before the function runs answers in its own shape ({"message"}).
GATEWAY_CODES = {403: "forbidden", 413: "body_too_large", 429: "throttled", 504: "gateway_timeout"}


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]

    @property
    def error_code(self) -> str | None:
        error = self.body.get("error")
        return error.get("code") if isinstance(error, dict) else None


@dataclass(frozen=True)
class Caller:
    """Calls ``base_url`` signed with ``credentials`` for ``service`` in ``region``."""

    name: str
    base_url: str  # ends with "/"
    service: str  # execute-api or lambda
    region: str
    credentials: Credentials | None  # None: unsigned

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Answer:
        data = None if body is None else json.dumps(body).encode()
        sent = dict(headers or {})
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        request = AWSRequest(method=method, url=self.base_url + path, data=data, headers=sent)
        if self.credentials is not None:
            SigV4Auth(self.credentials, self.service, self.region).add_auth(request)
        prepared = urllib.request.Request(
            str(request.url), data=data, method=method, headers=dict(request.headers.items())
        )
        try:
            with urllib.request.urlopen(prepared, timeout=timeout) as response:
                return Answer(response.status, json.load(response))
        except urllib.error.HTTPError as error:
            with error:
                text = error.read()
            return Answer(error.code, _error_body(error.code, text, error.reason))

    def unsigned(self) -> Caller:
        return Caller(f"{self.name} (unsigned)", self.base_url, self.service, self.region, None)


def _error_body(status: int, text: bytes, reason: str) -> dict[str, Any]:
    try:
        answer = json.loads(text)
    except ValueError:
        answer = {"message": text.decode(errors="replace")}
    if isinstance(answer, dict) and "error" in answer:
        return answer
    fallback = "gateway_error" if status >= 500 else "client_error"
    message = answer.get("message") or answer.get("Message") or reason
    return {"error": {"code": GATEWAY_CODES.get(status, fallback), "message": message}}
