"""Networks served end to end through the handler (REST v1, HTTP v2, direct): seed 001's GRUs
answer windows as their torch originals do, its PPO policies answer observations as
stable-baselines3 does, and their answers are captured with the window's newest row and
digest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.capture_support import ListSink
from tests.network_support import FEATURES, gru_answers, networks, ppo_answers
from tests.support import REGISTRY_KEY, load_event
from tickerserve.http.api import Api
from tickerserve.publishing.release import publish_bundle
from tickerserve.serving.capture import Capture
from tickerserve.serving.service import ModelService
from tickerserve.serving.windows import window_digest
from tickerserve.settings import Settings
from tickerserve.storage.store import LocalStore

TICKERS = {
    "gru": "GRU1",
    "gru_classifier": "GRUC",
    "gru_multi": "GRUM",
    "gru_long": "GRUL",
    "ppo": "PPO1",
    "ppo_box": "PPOB",
    "ppo_rows": "PPOR",
}
RELATIVE = 1e-5  # what the conversion check holds every network to


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("networks")
    store = LocalStore(root)
    for name, ticker in TICKERS.items():
        bundle = networks()[name].converted.bundle
        publish_bundle(store, bundle, registry_key=REGISTRY_KEY, routes={ticker: "stock"})
    return root


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def api(store_dir: Path, tmp_path: Path, sink: ListSink) -> Api:
    settings = Settings(store_path=str(store_dir), cache_dir=str(tmp_path / "cache"))
    return Api(ModelService(settings), capture=Capture(sink))


def call(api: Api, how: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    if how == "direct":
        return dict(api.handle(body, None))
    event = load_event("rest_predict.json" if how == "rest" else "http_predict.json")
    event["body"] = json.dumps(body)
    response = api.handle(event, None)
    assert response["statusCode"] == status, response["body"]
    return dict(json.loads(response["body"]))


def raw_windows(n: int, rows: int, width: int, seed: int = 0, missing: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=8.0, size=(n, rows, width)) + 3.0
    if missing:
        x[rng.random(x.shape) < 0.05] = np.nan
    return x.astype(np.float32).astype(np.float64)


def as_rows(window: np.ndarray, names: list[str] | None = None) -> list[Any]:
    values = [[None if np.isnan(v) else float(v) for v in row] for row in window]
    return values if names is None else [dict(zip(names, r, strict=True)) for r in values]


def close(mine: Any, theirs: np.ndarray, scale: float) -> None:
    np.testing.assert_allclose(
        np.asarray(mine, dtype=np.float64), theirs, rtol=0, atol=RELATIVE * max(scale, 1.0)
    )


@pytest.mark.parametrize("how", ["rest", "http", "direct"])
def test_a_gru_answers_windows_by_name_as_its_torch_original(api, how):
    # Given seed 001's GRU over 5 of 12 features (median imputer, StandardScaler)
    network = networks()["gru"]
    meta = network.converted.bundle.metadata
    used = meta.used_features
    windows = raw_windows(4, 8, 5, seed=1)
    want = gru_answers(network, windows)[:, 0]
    for window, theirs in zip(windows, want, strict=True):
        # When a window is sent as rows by name (only the features the model uses), oldest first
        body = call(api, how, {"ticker": "GRU1", "features": as_rows(window, used)})
        # Then the answer is the original's value
        assert set(body) == {"request_id", "ticker", "signal", "model", "prediction"}
        close(body["prediction"], np.asarray(theirs), abs(want).max())


def test_a_gru_takes_full_rows_in_feature_names_order(api):
    network = networks()["gru"]
    selected = network.converted.bundle.metadata.selected_features
    assert selected is not None
    full = raw_windows(1, 8, 12, seed=2)[0]
    want = gru_answers(network, full[None, :, selected])[0, 0]
    body = call(api, "rest", {"ticker": "GRU1", "features": as_rows(full)})
    close(body["prediction"], np.asarray(want), abs(want))


def test_a_window_of_another_length_is_a_400_naming_the_length(api):
    body = call(api, "rest", {"ticker": "GRU1", "features": [[0.0] * 12] * 7}, status=400)
    assert body == {
        "error": {
            "code": "wrong_window_length",
            "message": "this model takes a window of 8 rows (oldest first), got 7",
        }
    }


def test_missing_and_unknown_features_are_named_as_for_tree_models(api):
    rows = [dict.fromkeys(FEATURES, 0.0) for _ in range(8)]
    del rows[3]["f5"]
    rows[6]["nope"] = 1.0
    body = call(api, "rest", {"ticker": "GRU1", "features": rows}, status=400)
    assert body["error"] == {
        "code": "missing_features",
        "message": "row 3: missing 1 feature(s): f5",
        "features": ["f5"],
    }
    del rows[3]
    rows.insert(3, dict.fromkeys(FEATURES, 0.0))
    body = call(api, "rest", {"ticker": "GRU1", "features": rows}, status=400)
    assert body["error"]["code"] == "unknown_features"
    assert body["error"]["message"] == "row 6: unknown feature(s): nope"


def test_a_classifying_gru_answers_a_label_with_probabilities(api):
    network = networks()["gru_classifier"]
    windows = raw_windows(5, 6, 4, seed=3)
    want = gru_answers(network, windows)
    for window, theirs in zip(windows, want, strict=True):
        body = call(api, "rest", {"ticker": "GRUC", "features": as_rows(window)})
        assert list(body["probabilities"]) == ["down", "flat", "up"]
        close(list(body["probabilities"].values()), theirs, 1.0)
        assert body["prediction"] == ["down", "flat", "up"][int(np.argmax(theirs))]
        assert body["confidence"] == max(body["probabilities"].values())


def test_a_gru_with_two_outputs_answers_both_by_name(api):
    network = networks()["gru_multi"]
    windows = raw_windows(3, 5, 4, seed=4)
    want = gru_answers(network, windows)
    for window, theirs in zip(windows, want, strict=True):
        body = call(api, "http", {"ticker": "GRUM", "features": as_rows(window)})
        assert list(body["prediction"]) == ["ret_1h", "ret_4h"]
        close(list(body["prediction"].values()), theirs, abs(want).max())


def test_a_batch_carries_a_window_per_item_and_answers_as_singles(api):
    network = networks()["gru"]
    windows = raw_windows(3, 8, 5, seed=5)
    used = network.converted.bundle.metadata.used_features
    items = [{"ticker": "GRU1", "features": as_rows(w, used)} for w in windows]
    items.append({"ticker": "GRU1", "features": as_rows(windows[0][:4], used)})
    result = api.handle({"items": items}, None)
    assert (result["succeeded"], result["failed"]) == (3, 1)
    singles = [call(api, "direct", item)["prediction"] for item in items[:3]]
    assert [r["prediction"] for r in result["results"][:3]] == pytest.approx(singles, rel=1e-6)
    assert result["results"][3]["error"]["code"] == "wrong_window_length"


def test_a_discrete_policy_answers_as_stable_baselines3(api):
    # Given a PPO policy over 6 raw features, trained under VecNormalize, labelled actions
    network = networks()["ppo"]
    obs = raw_windows(1, 40, 6, seed=6, missing=False)[0] * 3  # some past VecNormalize's clip
    actions, probabilities, values = ppo_answers(network, obs)
    for row, action, theirs, value in zip(obs, actions, probabilities, values, strict=True):
        body = call(api, "rest", {"ticker": "PPO1", "features": [float(v) for v in row]})
        # Then the action is SB3's deterministic action, with its label, probabilities, value
        ordered = np.sort(theirs)
        if ordered[-1] - ordered[-2] > 1e-6:
            assert body["action"] == int(action)
        assert body["label"] == body["prediction"] == ["hold", "buy", "sell"][body["action"]]
        close(list(body["probabilities"].values()), theirs, 1.0)
        close(body["value"], np.asarray(value), abs(values).max())


def test_a_box_policy_answers_the_clipped_action_and_its_value(api):
    network = networks()["ppo_box"]
    obs = raw_windows(1, 40, 6, seed=7, missing=False)[0] * 3
    actions, _, values = ppo_answers(network, obs)
    answered = []
    for row, action, value in zip(obs, actions, values, strict=True):
        body = call(api, "rest", {"ticker": "PPOB", "features": [float(v) for v in row]})
        assert set(body) == {"request_id", "ticker", "signal", "model", "action", "value"}
        close(body["action"], action, 1.0)
        close(body["value"], np.asarray(value), abs(values).max())
        answered.append(body["action"][0])
    # Within the box's bounds, and some of them at a bound (the policy's mean was beyond it)
    assert all(-1.0 <= a <= 1.0 for a in answered) and {-1.0, 1.0} & set(answered)


def test_a_two_dimensional_observation_is_sent_as_rows(api):
    network = networks()["ppo_rows"]
    obs = raw_windows(6, 4, 6, seed=8, missing=False)
    _, probabilities, _ = ppo_answers(network, obs)
    for window, theirs in zip(obs, probabilities, strict=True):
        body = call(api, "rest", {"ticker": "PPOR", "features": as_rows(window)})
        close(list(body["probabilities"].values()), theirs, 1.0)
    body = call(api, "rest", {"ticker": "PPOR", "features": as_rows(obs[0][:3])}, status=400)
    assert body["error"] == {
        "code": "wrong_observation_shape",
        "message": "this model takes an observation of 4 rows (oldest first), got 3",
    }


def test_a_policy_refuses_missing_values(api):
    body = call(api, "rest", {"ticker": "PPO1", "features": [1.0, None, 0, 0, 0, 0]}, status=400)
    assert body["error"]["code"] == "missing_values_not_allowed"


def test_a_window_is_captured_as_its_newest_row_and_its_digest(api, sink):
    # Given a GRU over a 60-row window of 20 features
    network = networks()["gru_long"]
    names = network.converted.bundle.metadata.used_features
    window = raw_windows(1, 60, 20, seed=9)[0]
    # When it answers
    body = call(api, "rest", {"ticker": "GRUL", "features": as_rows(window, names)})
    # Then the record holds the newest row by name and the whole window's digest, and is small
    (line,) = sink.lines
    record = json.loads(line)
    newest = {
        n: (None if np.isnan(v) else float(v)) for n, v in zip(names, window[-1], strict=True)
    }
    assert record["features"] == newest
    assert record["window"] == {"rows": 60, "sha256": window_digest(window.ravel())}
    assert record["output"] == {"value": body["prediction"]}
    assert record["task"] == "regression"
    assert len(line) < 16 * 1024


def test_policies_are_captured_with_their_action(api, sink):
    call(api, "rest", {"ticker": "PPO1", "features": [0.5] * 6})
    call(api, "rest", {"ticker": "PPOB", "features": [0.5] * 6})
    discrete, box = (json.loads(line) for line in sink.lines)
    assert discrete["task"] == "classification"
    assert discrete["output"]["label"] == ["hold", "buy", "sell"][discrete["output"]["action"]]
    assert set(discrete["output"]) == {"label", "probabilities", "action", "critic_value"}
    assert box["task"] == "regression"
    assert box["output"]["value"] == box["output"]["action"][0]
    assert "window" not in discrete and discrete["features"] == {
        f"feature_{i}": 0.5 for i in range(6)
    }


def test_get_model_shows_the_input_a_network_takes(api):
    event = load_event("rest_model.json")
    event["path"] = "/models/GRUL"
    event["pathParameters"] = {"ticker": "GRUL"}
    response = api.handle(event, None)
    assert response["statusCode"] == 200, response["body"]
    body = json.loads(response["body"])
    assert body["network"] == {"input": "window", "shape": [60, 20], "policy": None, "value": False}


@pytest.mark.parametrize(("ticker", "features"), [
    ("GRU1", [[0.5] * 12] * 8), ("GRUC", [[0.5] * 4] * 6), ("PPO1", [0.5] * 6),
])  # fmt: skip
def test_an_explanation_of_a_network_is_a_400_saying_networks_have_none(api, ticker, features):
    # Given seed 001's GRUs and PPO policies, served through ONNX
    body = {"ticker": ticker, "features": features}
    # When an explanation is asked, alone and in a batch beside an item that does not ask
    refused = call(api, "rest", {**body, "explain": True}, status=400)["error"]
    batch = api.handle({"items": [{**body, "explain": 3}, body]}, None)
    # Then it is refused for what it is: a network, which has no exact per-feature explanation
    assert refused["code"] == "explain_unsupported"
    assert "networks have no exact per-feature explanation here" in refused["message"]
    assert refused["message"].startswith(f"n/{TICKER_NAMES[ticker]}@")
    assert batch["results"][0]["error"] == refused
    assert (batch["succeeded"], batch["failed"]) == (1, 1)
    assert "explanation" not in batch["results"][1]


TICKER_NAMES = {ticker: name for name, ticker in TICKERS.items()}
