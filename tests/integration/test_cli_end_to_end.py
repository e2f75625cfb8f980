"""End to end: the real ``tickerserve`` console script against a moto server on 127.0.0.1 and
against a local folder, then predictions through the Lambda API handler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.cli_support import FaultyStore, cli
from tests.seed_support import QQQ_SELECTED, original_prediction, seed_models, write_seed_tree
from tests.support import REGISTRY_KEY, DemoModels, FakeClock, load_event
from tickerserve.http.api import Api
from tickerserve.layout import TRAINING_HISTORY_KEY
from tickerserve.publishing.demo import FEATURES
from tickerserve.publishing.release import RouteChange, publish
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.history import read_records
from tickerserve.storage.registry import read_registry
from tickerserve.storage.store import LocalStore, S3Store, Store

SCRIPT = str(Path(sys.executable).parent / "tickerserve")


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script in its own process (no TICKERSERVE_* from the caller)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKERSERVE_")}
    return subprocess.run(
        [SCRIPT, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def bucket_args(bucket: S3Store, endpoint: str) -> list[str]:
    return ["--bucket", bucket.bucket, "--endpoint-url", endpoint]


def handler_for(store: Store, tmp_path: Path, clock: FakeClock | None = None) -> Api:
    """The Lambda API over ``store``, as the handler builds it, with its own /tmp cache."""
    settings = Settings(bucket="unused", cache_dir=str(tmp_path / "lambda-tmp"), registry_ttl=60)
    return Api(ModelService(settings, store, clock=clock or FakeClock(), registry_wait=30.0))


def predict(api: Api, ticker: str, row: np.ndarray) -> dict[str, Any]:
    event = load_event("rest_predict.json")
    features = {n: None if np.isnan(v) else float(v) for n, v in zip(FEATURES, row, strict=True)}
    event["body"] = json.dumps({"ticker": ticker, "features": features})
    response = api.handle(event, None)
    body = json.loads(response["body"])
    assert response["statusCode"] == 200, body
    return body


def probe_rows(n: int = 8) -> np.ndarray:
    rng = np.random.default_rng(42)
    rows = rng.normal(size=(n, len(FEATURES)))
    rows[rng.random(rows.shape) < 0.1] = np.nan
    return rows


def expected(ticker: str, row: np.ndarray) -> tuple[str, dict[str, float]]:
    """What the seed project's own pickles answer for ``ticker``."""
    m = seed_models()
    if ticker == "SMH":
        return original_prediction(m.smh, m.smh_encoder, row)
    if ticker == "QQQ":
        return original_prediction(m.qqq, m.qqq_encoder, row[QQQ_SELECTED])
    if ticker == "XLF":
        return original_prediction(m.xlf, m.xlf_encoder, row)
    return original_prediction(m.universal, m.universal_encoder, row)


def assert_answers_like_the_pickles(api: Api, tickers: list[str]) -> None:
    for ticker in tickers:
        for row in probe_rows():
            body = predict(api, ticker, row)
            label, probabilities = expected(ticker, row)
            assert body["prediction"] == label, ticker
            assert body["probabilities"].keys() == probabilities.keys()
            for name, p in probabilities.items():
                assert body["probabilities"][name] == pytest.approx(p, abs=1e-12)


def test_seed_import_through_console_script_serves_the_pickles_answers(
    server_bucket, moto_endpoint, tmp_path
):
    # Given a seed models_storage/ tree and an empty bucket on the moto server
    storage = write_seed_tree(tmp_path)
    # When the console script imports it, with one extra stock ticker
    result = run_script(
        *bucket_args(server_bucket, moto_endpoint),
        "import-seed",
        str(storage),
        "--stocks",
        "NVDA",
        "--json",
    )
    # Then it succeeds and publishes every model as 1.0.0 in one registry revision
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {m["model"]: m["version"] for m in report["models"]} == {
        "etfs/QQQ": "1.0.0",
        "etfs/SMH": "1.0.0",
        "etfs/XLF": "1.0.0",
        "stocks/universal": "1.0.0",
    }
    assert report["revision"] == 1
    # And the Lambda API answers every routed ticker with the labels and probabilities the
    # original pickles produce
    api = handler_for(server_bucket, tmp_path)
    assert_answers_like_the_pickles(api, ["SMH", "QQQ", "XLF", "AAPL", "NVDA"])
    body = predict(api, "NVDA", probe_rows()[0])
    assert body["model"] == {"name": "stocks/universal", "version": "1.0.0", "alias": "production"}


def test_promote_and_rollback_reach_a_warm_handler_after_its_ttl(
    server_bucket, moto_endpoint, tmp_path
):
    # Given SMH 1.0.0 in production and 1.0.1 published, and a warm handler
    storage = write_seed_tree(tmp_path)
    target = bucket_args(server_bucket, moto_endpoint)
    assert cli(*target, "import-seed", str(storage)).exit_code == 0
    assert (
        cli(
            *target,
            "publish",
            str(storage / "etfs/SMH/production"),
            "--model",
            "etfs/SMH",
            "--metrics",
            "sharpe=2",
        ).exit_code
        == 0
    )
    clock = FakeClock()
    api = handler_for(server_bucket, tmp_path, clock)
    row = probe_rows()[0]
    assert predict(api, "SMH", row)["model"]["version"] == "1.0.0"
    # When 1.0.1 is promoted
    assert cli(*target, "promote", "etfs/SMH", "1.0.1").exit_code == 0
    # Then the warm handler keeps 1.0.0 within the TTL and serves 1.0.1 after it
    clock.advance(30)
    assert predict(api, "SMH", row)["model"]["version"] == "1.0.0"
    clock.advance(31)
    assert predict(api, "SMH", row)["model"]["version"] == "1.0.1"
    # When rolled back / Then after another TTL it is on 1.0.0 again, same answer as the pickle
    assert cli(*target, "rollback", "etfs/SMH").exit_code == 0
    clock.advance(61)
    body = predict(api, "SMH", row)
    assert body["model"]["version"] == "1.0.0"
    assert body["prediction"] == expected("SMH", row)[0]


def test_folder_store_synced_to_bucket_serves_the_same_answers(
    server_bucket, moto_endpoint, tmp_path
):
    # Given a seed tree imported into a local folder store, which already serves it
    folder = tmp_path / "store"
    storage = write_seed_tree(tmp_path)
    assert cli("--store", str(folder), "import-seed", str(storage)).exit_code == 0
    assert_answers_like_the_pickles(
        handler_for(LocalStore(folder), tmp_path / "a"), ["QQQ", "MSFT"]
    )
    # When the console script syncs it to the bucket (not a terminal: a plain summary)
    first = run_script(*bucket_args(server_bucket, moto_endpoint), "sync", str(folder))
    second = run_script(*bucket_args(server_bucket, moto_endpoint), "sync", str(folder))
    # Then the first sync uploads all 15 files, the second skips all of them
    files = len(list(LocalStore(folder).list("")))
    assert files == 15  # 4 versions x 2 files and their 4 digest indexes, 2 histories, registry
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"s3://{server_bucket.bucket}: uploaded {files} (")
    assert f"uploaded 0 (0 B), skipped {files} unchanged, deleted 0, failed 0" in second.stdout
    # And the bucket serves exactly what the folder served
    assert_answers_like_the_pickles(handler_for(server_bucket, tmp_path / "b"), ["QQQ", "MSFT"])


def test_refusals_through_the_console_script_leave_the_bucket_empty(
    server_bucket, moto_endpoint, tmp_path
):
    # Given a seed folder whose model pickle is unreadable
    storage = write_seed_tree(tmp_path)
    (storage / "etfs/SMH/production/model.joblib").write_bytes(b"not a pickle")
    target = bucket_args(server_bucket, moto_endpoint)
    # When publishing it, or promoting a version that does not exist
    bad_pickle = run_script(
        *target,
        "publish",
        str(storage / "etfs/SMH/production"),
        "--model",
        "etfs/SMH",
        "--alias",
        "production",
    )
    no_version = run_script(*target, "promote", "etfs/SMH", "1.0.0")
    # Then both exit 2 with one line naming the problem, and nothing was written
    assert bad_pickle.returncode == 2
    assert bad_pickle.stderr.startswith(
        f"error: cannot unpickle {storage / 'etfs/SMH/production/model.joblib'}: "
    )
    assert bad_pickle.stderr.count("\n") == 1
    assert (no_version.returncode, no_version.stderr) == (
        2,
        "error: refusing etfs/SMH 1.0.0: etfs/SMH 1.0.0 does not exist\n",
    )
    assert list(server_bucket.list("")) == []


def test_two_publishers_racing_on_the_registry_both_survive(
    server_bucket, moto_endpoint, models: DemoModels
):
    # Given one routed model (revision 1) and two publishers with their own S3 clients
    publish(
        server_bucket,
        models.smh,
        registry_key=REGISTRY_KEY,
        model="etfs/SMH",
        aliases=["production"],
        routes=[RouteChange("SMH", "etf", "etfs/SMH")],
    )
    both_read = threading.Barrier(2, timeout=30)
    first_attempt: set[int] = set()

    def hold_first_registry_write(key: str) -> None:
        # Both publishers have read revision 1 before either writes: a guaranteed conflict.
        if key == REGISTRY_KEY and threading.get_ident() not in first_attempt:
            first_attempt.add(threading.get_ident())
            both_read.wait()

    stores = [
        FaultyStore(
            S3Store(server_bucket.bucket, endpoint_url=moto_endpoint), hold_first_registry_write
        )
        for _ in range(2)
    ]
    jobs = [
        (stores[0], models.spy, "etfs/SPY", RouteChange("SPY", "etf", "etfs/SPY")),
        (
            stores[1],
            models.universal,
            "stocks/universal",
            RouteChange("AAPL", "stock", "stocks/universal"),
        ),
    ]
    errors: list[BaseException] = []

    def run(store, bundle, model, route) -> None:
        try:
            publish(
                store,
                bundle,
                registry_key=REGISTRY_KEY,
                model=model,
                aliases=["production"],
                routes=[route],
            )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    # When both publish at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Then both succeeded, one of them after a retry, and nothing was lost
    assert errors == []
    registry_puts = sum(op == "put" and k == REGISTRY_KEY for s in stores for op, k in s.calls)
    assert registry_puts == 3  # two first attempts (one lost with 412) + one retry
    registry = read_registry(server_bucket, REGISTRY_KEY).registry
    assert registry.revision == 3
    assert set(registry.tickers) == {"SMH", "SPY", "AAPL"}
    assert {m: e.aliases["production"].version for m, e in registry.models.items()} == {
        "etfs/SMH": "1.0.0",
        "etfs/SPY": "1.0.0",
        "stocks/universal": "1.0.0",
    }
    history = read_records(server_bucket, TRAINING_HISTORY_KEY).records
    assert sorted(r["model"] for r in history) == ["etfs/SMH", "etfs/SPY", "stocks/universal"]
