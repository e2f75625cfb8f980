"""``tickerserve serve`` as a process: it says what it serves, captures what it answered into
the store and writes every record before it exits, warns when it listens beyond this machine,
and starts even when the registry cannot be read yet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.capture_support import read_capture
from tests.integration.serving import TICKERSERVE, post_json, running
from tests.seed_layouts import write_seed_000
from tests.support import REGISTRY_KEY, DemoModels, free_port, load_event
from tickerserve.publishing.release import publish_bundle
from tickerserve.storage.store import LocalStore

FEATURES = json.loads(load_event("rest_predict.json")["body"])["features"]


@pytest.fixture
def store(tmp_path: Path, models: DemoModels) -> LocalStore:
    local = LocalStore(tmp_path / "store")
    publish_bundle(local, models.smh, registry_key=REGISTRY_KEY, routes={"SMH": "etf"})
    return local


def serve(store: LocalStore, tmp_path: Path, *extra: str, host: str = "127.0.0.1"):
    port = free_port()
    argv = [*TICKERSERVE, "--store", str(store.root), "serve", "--host", host, "--port",
            str(port), "--cache-dir", str(tmp_path / "cache"), *extra]  # fmt: skip
    return running(argv, port=port, log=tmp_path / "serve.log")


def test_answered_requests_are_captured_into_the_store_before_it_exits(store, tmp_path):
    with serve(store, tmp_path) as server:
        for rid in ("cap-1", "cap-2"):
            body = {"ticker": "SMH", "features": FEATURES, "request_id": rid}
            assert post_json(f"{server.url}/predict", body).status == 200
        assert server.stop() == 0
    output = server.output()
    assert f"models: {store.root} (registry revision 1: 1 models, 1 tickers)" in output
    assert f"capture: on, into {store.root} under capture/" in output
    assert "capture: 2 record(s) in 1 object(s) under capture/" in output
    assert [r["request_id"] for r in read_capture(store)] == ["cap-1", "cap-2"]


def test_no_capture_writes_nothing(store, tmp_path):
    with serve(store, tmp_path, "--no-capture") as server:
        body = {"ticker": "SMH", "features": FEATURES}
        assert post_json(f"{server.url}/predict", body).status == 200
        assert server.stop() == 0
    assert "capture:" not in server.output()
    assert read_capture(store) == []


def test_listening_beyond_loopback_warns_that_there_is_no_authentication(store, tmp_path):
    with serve(store, tmp_path, host="0.0.0.0") as server:
        assert server.stop() == 0
    assert "warning: listening on 0.0.0.0; the local server has no authentication" in (
        server.output()
    )


def test_an_empty_store_still_starts_and_says_why_nothing_answers(tmp_path):
    empty = LocalStore(tmp_path / "empty")
    with serve(empty, tmp_path, "--no-capture") as server:
        reply = post_json(f"{server.url}/predict", {"ticker": "SMH", "features": FEATURES})
        assert server.stop() == 0
    assert reply.status == 503 and reply.json()["error"]["code"] == "storage_unavailable"
    assert f"models: {empty.root} (registry not readable yet: " in server.output()


def test_a_folder_holding_seed_000_s_own_registry_names_the_import_to_run(tmp_path):
    # Given seed 000's models_storage/ as its document draws it: its registry sits at
    # metadata/asset_registry.json, tickerserve's registry key
    storage = write_seed_000(tmp_path)
    command = f"tickerserve --store {storage} import-seed"
    # When it is served and asked for SMH
    with serve(LocalStore(storage), tmp_path, "--no-capture") as server:
        reply = post_json(f"{server.url}/predict", {"ticker": "SMH", "features": FEATURES})
        assert server.stop() == 0
    # Then the start line says nothing is served until import-seed converts it, and which
    # command to run; the answer is a 503 naming it, never "unsupported schema None"
    output = server.output()
    assert (
        f"models: {storage} (nothing is served until it is converted: the registry in "
        f"{storage} is seed 000's own asset_registry.json, which tickerserve serves only once "
        f"converted: run `{command}` once" in output
    )
    assert reply.status == 503
    error = reply.json()["error"]
    assert error["code"] == "registry_needs_import" and f"run `{command}` once" in error["message"]
    assert "unsupported schema" not in output + error["message"]
