"""Real storage faults between the runtime and a moto server: a TCP proxy that accepts and never
answers (black hole) or answers one byte every half second (trickle).

Every store call must end within its deadline (503 ``storage_unavailable`` with
``Retry-After``), and a warm request for a model in memory must never wait for storage.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import boto3
import pytest

from tests.fault_proxy import FaultProxy
from tests.support import REGISTRY_KEY, DemoModels, FakeClock, load_event, populate
from tickerserve.errors import IntegrityError, StorageUnavailable
from tickerserve.http.api import Api
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.registry import update_registry
from tickerserve.storage.store import S3Store, Timeouts

T = TypeVar("T")
# The production mechanism with a shorter deadline, so each fault costs a test one second.
FAST = Timeouts(call=1.0, min_rate=1024 * 1024)
HANG = 20.0  # a call still running after this long is hung (the deadline is 1 s)
FAULTS = ["black_hole", "trickle"]


def finishes(work: Callable[[], T]) -> T:
    """``work()``'s result; fails the test if it is still running after ``HANG`` seconds."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(("ok", work()))
        except BaseException as exc:
            outcome.append(("error", exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG)
    assert outcome, f"still waiting on storage after {HANG:.0f} s"
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value


@pytest.fixture(scope="module")
def bucket(moto_endpoint: str, models: DemoModels) -> S3Store:
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_endpoint)
    name = f"faults-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=name)
    store = S3Store(name, client=client)
    populate(store, models)
    return store


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    with FaultProxy(moto_endpoint) as running:
        yield running


def proxied(bucket: S3Store, proxy: FaultProxy) -> S3Store:
    """The bucket through the proxy, with the production client configuration."""
    return S3Store(bucket.bucket, endpoint_url=proxy.url, region="us-east-1", timeouts=FAST)


def service_for(store: S3Store, tmp_path: Path, clock: FakeClock) -> ModelService:
    settings = Settings(bucket=store.bucket, cache_dir=str(tmp_path / "cache"), registry_ttl=60)
    return ModelService(settings, store, clock=clock)


def registry_gets(proxy: FaultProxy, bucket: S3Store) -> int:
    return proxy.seen(f"GET /{bucket.bucket}/{REGISTRY_KEY}".encode())


def predict_event() -> dict[str, Any]:
    return load_event("rest_predict.json")


# -- every call has a deadline ---------------------------------------------------------------
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("operation", ["get", "put", "head", "list", "delete"])
def test_every_store_call_ends_with_storage_unavailable(bucket, proxy, fault, operation):
    # Given a store behind a proxy that stopped answering properly
    store = proxied(bucket, proxy)
    getattr(proxy, fault)()
    calls: dict[str, Callable[[], object]] = {
        "get": lambda: store.get(REGISTRY_KEY),
        "put": lambda: store.put("scratch/x.json", b"{}"),
        "head": lambda: store.head(REGISTRY_KEY),
        "list": lambda: list(store.list("etfs/")),
        "delete": lambda: store.delete(["scratch/x.json"]),
    }
    # When the call is made, Then it ends, as a storage failure with a retry hint
    with pytest.raises(StorageUnavailable) as caught:
        finishes(calls[operation])
    assert (caught.value.status, caught.value.code) == (503, "storage_unavailable")
    assert caught.value.retry_after is not None


# -- the warm path never waits on storage ----------------------------------------------------
@pytest.mark.parametrize("fault", FAULTS)
def test_warm_requests_answer_from_memory_while_the_registry_check_hangs(
    bucket, proxy, tmp_path, fault
):
    # Given a warm service holding SMH, and a store that then stops answering
    clock = FakeClock()
    service = service_for(proxied(bucket, proxy), tmp_path, clock)
    assert service.serving_for_ticker("SMH").resolved.version == "1.0.0"
    getattr(proxy, fault)()
    clock.advance(61)  # the registry is due for its conditional GET
    # When requests arrive
    answers = [finishes(lambda: service.serving_for_ticker("SMH")) for _ in range(20)]
    # Then every one answered from memory while the re-check had not come back
    assert {a.resolved.version for a in answers} == {"1.0.0"}
    assert registry_gets(proxy, bucket) == 2  # the first read and one re-check, not one each
    assert service.counters.registry_failures == 0  # the check is still in flight


def test_a_hung_registry_check_backs_off_and_recovers(bucket, proxy, tmp_path):
    # Given a warm service whose registry re-check hit a black hole
    clock = FakeClock()
    service = service_for(proxied(bucket, proxy), tmp_path, clock)
    service.serving_for_ticker("SMH")
    proxy.black_hole()
    clock.advance(61)
    service.serving_for_ticker("SMH")
    # When the check's deadline has passed, a later request picks the failure up
    while service.counters.registry_failures == 0:
        time.sleep(0.05)
        assert finishes(lambda: service.serving_for_ticker("SMH")).resolved.version == "1.0.0"
    # Then it is counted, and no new check starts until the back-off (2 s) has passed
    before = registry_gets(proxy, bucket)
    for _ in range(10):
        service.serving_for_ticker("SMH")
    assert registry_gets(proxy, bucket) == before
    # And once storage is back and the registry changed, the next check brings it in
    proxy.passthrough()
    update_registry(bucket, REGISTRY_KEY, lambda registry: None)  # a new revision
    clock.advance(3)
    finishes(lambda: service.serving_for_ticker("SMH"))
    assert service.registry().revision == bucket_revision(bucket)


def bucket_revision(bucket: S3Store) -> int:
    blob = bucket.get(REGISTRY_KEY)
    assert blob is not None
    return int(json.loads(blob.data)["revision"])


# -- a cold request gets a 503 with Retry-After ----------------------------------------------
@pytest.mark.parametrize("fault", FAULTS)
def test_cold_request_gets_503_with_retry_after(bucket, proxy, tmp_path, fault):
    # Given a cold sandbox and a store that does not answer
    clock = FakeClock()
    api = Api(service_for(proxied(bucket, proxy), tmp_path, clock))
    getattr(proxy, fault)()
    # When a prediction is requested
    response = finishes(lambda: api.handle(predict_event(), None))
    # Then it is a 503 storage_unavailable that says when to come back
    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"]["code"] == "storage_unavailable"
    assert int(response["multiValueHeaders"]["Retry-After"][0]) >= 1
    # And while the sandbox backs off, the next request fails at once, without a store call
    gets = registry_gets(proxy, bucket)
    again = finishes(lambda: api.handle(predict_event(), None))
    assert again["statusCode"] == 503
    assert "Retry-After" in again["multiValueHeaders"]
    assert registry_gets(proxy, bucket) == gets


# -- a store that claims a terabyte and trickles it (issue 19) -------------------------------
CLAIMED = 10**12  # bytes: at the 20 MiB/s floor, 13 hours of allowance if it were believed
LIMIT = 6.0  # seconds a request may wait on such a store, cold or warm


def serving_store(bucket: S3Store, proxy: FaultProxy) -> S3Store:
    """The bucket through the proxy with the prediction function's own timeouts."""
    return S3Store(bucket.bucket, endpoint_url=proxy.url, region="us-east-1")


def timed(work: Callable[[], T]) -> tuple[T, float]:
    started = time.monotonic()
    result = finishes(work)
    return result, time.monotonic() - started


def assert_503(response: dict[str, Any]) -> str:
    assert response["statusCode"] == 503
    error = json.loads(response["body"])["error"]
    assert error["code"] == "storage_unavailable"
    assert int(response["multiValueHeaders"]["Retry-After"][0]) >= 1
    return str(error["message"])


def test_a_cold_request_to_a_store_claiming_a_terabyte_gets_a_503_within_6_s(
    bucket, proxy, tmp_path
):
    # Given a cold sandbox with the function's timeouts, and a store that answers every GET
    # with Content-Length 10^12 and then one byte every half second
    api = Api(service_for(serving_store(bucket, proxy), tmp_path, FakeClock()))
    proxy.claim(CLAIMED)
    # When a prediction needs the registry
    response, took = timed(lambda: api.handle(predict_event(), None))
    # Then the registry read gets its call time and no more: a 503 within 6 s
    assert "within 5.0 s" in assert_503(response)
    assert took < LIMIT


def test_a_warm_request_for_a_model_not_yet_loaded_gets_a_503_within_6_s(bucket, proxy, tmp_path):
    # Given a warm sandbox that serves SMH, with a fresh registry
    api = Api(service_for(serving_store(bucket, proxy), tmp_path, FakeClock()))
    assert api.handle(predict_event(), None)["statusCode"] == 200
    proxy.claim(CLAIMED)
    # When a request needs SPY, which it has not loaded (metadata.json is read first)
    event = predict_event()
    body = json.loads(event["body"])
    event["body"] = json.dumps({**body, "ticker": "SPY"})
    response, took = timed(lambda: api.handle(event, None))
    # Then it is a 503 within 6 s, and SMH still answers from memory
    assert_503(response)
    assert took < LIMIT
    assert api.handle(predict_event(), None)["statusCode"] == 200


def test_an_artifact_claiming_more_than_its_recorded_size_is_refused_at_once(
    bucket, proxy, tmp_path
):
    # Given a service that has read the registry and SPY's metadata (with its artifacts'
    # recorded sizes), and a store that then claims a terabyte for the model file
    service = service_for(serving_store(bucket, proxy), tmp_path, FakeClock())
    _, resolved = service.resolve_ticker("SPY")
    metadata, _ = service.metadata(resolved)
    proxy.claim(CLAIMED)
    # When the model is loaded, Then the download is refused at the claim (503), not timed out
    with pytest.raises(IntegrityError) as caught:
        timed(lambda: service.load(resolved))
    assert caught.value.status == 503
    recorded = metadata.artifacts["model.txt"].size
    assert f"claims {CLAIMED} bytes where {recorded} are recorded" in caught.value.message


class LambdaContext:
    """What a store call needs of Lambda's context: the invocation's time left."""

    def __init__(self, seconds: float) -> None:
        self.ends = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.ends - time.monotonic()) * 1000)


def test_no_store_call_outlives_the_function_s_remaining_time(bucket, proxy, tmp_path):
    # Given a cold sandbox whose invocation has 2.5 s left, and a store that trickles
    api = Api(service_for(serving_store(bucket, proxy), tmp_path, FakeClock()))
    proxy.claim(CLAIMED)
    # When a prediction needs the registry (its own allowance would be 5 s)
    context = cast("Any", LambdaContext(2.5))
    response, took = timed(lambda: api.handle(predict_event(), context))
    # Then it answers 503 a margin (1 s) before the invocation's time is up
    assert "the function's remaining time" in assert_503(response)
    assert took < 2.5
