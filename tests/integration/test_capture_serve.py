"""``tickerserve serve`` captures every answered request into the store, Ctrl-C included."""

from __future__ import annotations

import json
import signal
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path

from tests.capture_support import capture_objects, read_capture
from tests.integration.serving import TICKERSERVE, running
from tests.support import REGISTRY_KEY, free_port, load_event
from tickerserve.publishing.release import publish_bundle
from tickerserve.storage.bundle import Bundle
from tickerserve.storage.store import LocalStore

FEATURES = json.loads(load_event("rest_predict.json")["body"])["features"]
CLIENTS = 4
PER_CLIENT = 1250  # 5,000 requests in all
TICKERS = ("SMH", "SPY", "AAPL")


def test_5000_requests_from_4_threads_are_all_captured_after_ctrl_c(
    tmp_path: Path, demo_bundles: dict[str, Bundle]
):
    # Given a local folder store with three demo models and `tickerserve serve` over it
    store = LocalStore(tmp_path / "store")
    for name, ticker, asset_class in (
        ("etfs/SMH", "SMH", "etf"),
        ("etfs/SPY", "SPY", "etf"),
        ("stocks/universal", "AAPL", "stock"),
    ):
        publish_bundle(
            store, demo_bundles[name], registry_key=REGISTRY_KEY, routes={ticker: asset_class}
        )
    port = free_port()
    argv = [*TICKERSERVE, "--store", str(store.root), "serve", "--port", str(port),
            "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    with running(argv, port=port, log=tmp_path / "serve.log") as server:
        # When 4 client threads send 5,000 predictions, each with its own request id
        def client(k: int) -> list[str]:
            answered = []
            connection = HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                for i in range(PER_CLIENT):
                    rid = f"c{k}-{i}"
                    body = {"ticker": TICKERS[i % len(TICKERS)], "features": FEATURES}
                    connection.request(
                        "POST", "/predict", json.dumps(body),
                        {"Content-Type": "application/json", "X-Request-Id": rid},
                    )  # fmt: skip
                    reply = connection.getresponse()
                    payload = json.loads(reply.read())
                    assert reply.status == 200, payload
                    answered.append(payload["request_id"])
            finally:
                connection.close()
            return answered

        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            answered = [rid for ids in pool.map(client, range(CLIENTS)) for rid in ids]
        # and the server is stopped with Ctrl-C right after the last answer
        assert server.stop(signal.SIGINT) == 0, server.output()
    # Then every answered request is in the store's capture, exactly once
    assert len(answered) == CLIENTS * PER_CLIENT
    records = read_capture(store)
    assert sorted(r["request_id"] for r in records) == sorted(answered)
    assert {r["model"] for r in records} == {"etfs/SMH", "etfs/SPY", "stocks/universal"}
    assert all(key.endswith(".jsonl.gz") for key in capture_objects(store))
    assert f"capture: {len(answered)} record(s)" in server.output()
