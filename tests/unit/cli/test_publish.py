"""``tickerserve publish``: a seed folder, a pickle or a native bundle folder becomes a checked
version; aliases, routes and metrics in the same step; every refusal writes nothing, and a
publish that fails half-way says what is live."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor

from tests.cli_support import REGISTRY, FaultyStore, cli, cli_json, refused, registry_of, ts
from tests.network_support import gru_answers, networks, train_gru, write_gru_run
from tests.seed_layouts import VOL_FEATURES, ensemble_predict, originals, stack_predict
from tests.seed_support import seed_folder, seed_models
from tests.support import CRASHED, GARBLED_KINDS, garbled_bundle, published_smh
from tickerserve.errors import Conflict, StorageUnavailable
from tickerserve.http.api import Api
from tickerserve.layout import TRAINING_HISTORY_KEY, index_key
from tickerserve.publishing.demo import FEATURES
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.history import read_records
from tickerserve.storage.registry import read_registry
from tickerserve.storage.store import LocalStore
from tickerserve.storage.version_index import read_index


def test_publish_seed_folder(store_path, seed):
    # Given a seed folder
    # When published with an alias and an extra metric
    out = cli_json(
        "--store",
        store_path,
        "publish",
        str(seed["smh"]),
        "--model",
        "etfs/SMH",
        "--alias",
        "production",
        "--metrics",
        "sharpe=1.5",
    )
    # Then 1.0.0 is published, converted, production points at it, and history has it
    assert (out["model"], out["version"], out["aliases"], out["revision"]) == (
        "etfs/SMH",
        "1.0.0",
        ["production"],
        1,
    )
    assert out["source"]["kind"] == "seed" and out["source"]["probe_rows"] == 256
    assert out["metrics"] == {"accuracy": 0.61, "f1_macro": 0.55, "sharpe": 1.5}
    assert registry_of(store_path).models["etfs/SMH"].aliases["production"].version == "1.0.0"
    history = cli_json("--store", store_path, "history", "training")
    assert [(r["event"], r["version"]) for r in history] == [("published", "1.0.0")]


def test_publish_text_output_without_alias(store_path, seed):
    result = ts(store_path, "publish", str(seed["smh"]), "--model", "etfs/SMH")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"published etfs/SMH 1.0.0 to {store_path} (converted ")
    assert result.stdout.endswith(
        "no alias moved; promote with: tickerserve promote etfs/SMH 1.0.0\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model", "etfs/SMH", "--version", "1.0"],
            "invalid version '1.0': expected MAJOR.MINOR.PATCH, e.g. 1.0.2",
        ),
        (
            ["--model", "../etc"],
            "invalid model name '../etc': 1-4 '/'-separated segments of letters, digits, ._-^=",
        ),
        (
            ["--model", "metadata/x"],
            "invalid model name 'metadata/x': 'metadata' and 'versions' are reserved",
        ),
        (
            ["--model", "etfs/SMH", "--version", "1.0.0", "--bump", "minor"],
            "give --version or --bump, not both",
        ),
        (
            ["--model", "etfs/SMH", "--metrics", "sharpe=high"],
            "--metrics 'sharpe=high': expected NAME=NUMBER with a finite number",
        ),
        (
            ["--model", "etfs/SMH", "--alias", "Prod!"],
            "invalid alias 'Prod!': lower-case letters, digits, _ and -",
        ),
    ],
)
def test_publish_refuses_bad_arguments_and_writes_nothing(store_path, seed, args, message):
    refused(ts(store_path, "publish", str(seed["smh"]), *args), message)
    assert list(LocalStore(store_path).list("")) == []


def test_publish_with_route_makes_the_ticker_servable_in_one_step(store_path, seed, tmp_path):
    # When a model is published with its alias and two routes
    result = ts(
        store_path,
        "publish",
        str(seed["smh"]),
        "--model",
        "etfs/SMH",
        "--alias",
        "production",
        "--route",
        "smh",
        "-r",
        "SOXX",
    )
    # Then both tickers route to it (one registry revision) and a request is answered
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == [
        "route SMH strategy: (none) → etfs/SMH",
        "route SOXX strategy: (none) → etfs/SMH",
    ]
    registry = registry_of(store_path)
    assert (registry.revision, registry.tickers["SOXX"].model) == (1, "etfs/SMH")
    api = Api(ModelService(Settings(store_path=store_path, cache_dir=str(tmp_path / "c"))))
    answer = api.direct({"ticker": "SOXX", "features": [0.1] * 12})
    assert answer["model"]["name"] == "etfs/SMH", answer


def test_publish_with_an_alias_but_no_route_says_nothing_reaches_it(store_path, seed):
    result = ts(store_path, "publish", str(seed["smh"]), "--model", "etfs/SMH", "-a", "production")
    assert result.exit_code == 0
    assert "note: no ticker routes to etfs/SMH yet" in result.stderr
    assert "tickerserve route TICKER --model etfs/SMH" in result.stderr


def test_publish_route_without_alias_is_refused_and_writes_nothing(store_path, seed):
    result = ts(store_path, "publish", str(seed["smh"]), "--model", "etfs/SMH", "--route", "SMH")
    refused(
        result,
        "--route needs --alias (e.g. --alias production): a route to a model no alias points "
        "at answers nothing",
    )
    assert list(LocalStore(store_path).list("")) == []


def test_publish_refuses_existing_version(store_path, seed):
    assert ts(store_path, "publish", str(seed["smh"]), "--model", "etfs/SMH").exit_code == 0
    refused(
        ts(store_path, "publish", str(seed["smh"]), "--model", "etfs/SMH", "--version", "1.0.0"),
        "etfs/SMH 1.0.0 already exists; versions are immutable",
    )


def test_publish_refuses_missing_source(store_path, tmp_path):
    missing = tmp_path / "nope"
    refused(
        ts(store_path, "publish", str(missing), "--model", "etfs/SMH"), f"{missing}: not a folder"
    )


def test_publish_refuses_unreadable_pickle_and_writes_nothing(store_path, seed):
    (seed["smh"] / "model.joblib").write_bytes(b"garbage")
    result = ts(
        store_path, "publish", str(seed["smh"]), "--model", "etfs/SMH", "--alias", "production"
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: cannot unpickle {seed['smh'] / 'model.joblib'}: ")
    assert result.stderr.count("\n") == 1
    assert list(LocalStore(store_path).list("")) == []


def test_publish_native_bundle_folder_under_a_custom_registry_key(tmp_path, store_path, models):
    # Given a native bundle folder (model.txt + metadata.json)
    folder = tmp_path / "native"
    folder.mkdir()
    (folder / "model.txt").write_bytes(models.spy.files["model.txt"])
    (folder / "metadata.json").write_bytes(models.spy.metadata_bytes)
    # When published with an explicit version into a registry at another key
    out = cli_json(
        "--store",
        store_path,
        "--registry-key",
        "metadata/staging_registry.json",
        "publish",
        str(folder),
        "--model",
        "etfs/SPY",
        "--version",
        "2.1.0",
        "-a",
        "staging",
    )
    # Then the artifacts are taken as they are and only that registry moved
    assert (out["version"], out["source"]["kind"]) == ("2.1.0", "native")
    assert (
        out["artifacts"]["model.txt"]["sha256"] == models.spy.metadata.artifacts["model.txt"].sha256
    )
    staging = read_registry(LocalStore(store_path), "metadata/staging_registry.json").registry
    assert staging.models["etfs/SPY"].aliases["staging"].version == "2.1.0"
    assert LocalStore(store_path).head(REGISTRY) is None


def test_publish_after_deleting_the_top_version_never_reuses_its_number(two_versions, seed):
    # Given 1.0.0 (production) and 1.0.1, and 1.0.1 is deleted
    assert ts(two_versions, "delete", "etfs/SMH", "1.0.1").exit_code == 0
    # When publishing again without a version
    out = cli_json("--store", two_versions, "publish", str(seed["smh"]), "--model", "etfs/SMH")
    # Then the deleted number is skipped: warm caches keyed by (model, version) stay correct
    assert out["version"] == "1.0.2"
    # And a minor bump still starts from the highest number ever used
    out = cli_json(
        "--store", two_versions, "publish", str(seed["smh"]), "-m", "etfs/SMH", "--bump", "minor"
    )
    assert out["version"] == "1.1.0"


def test_publish_refuses_an_explicit_version_that_existed_before(two_versions, seed):
    # Given 1.0.1 was published and then deleted
    assert ts(two_versions, "delete", "etfs/SMH", "1.0.1").exit_code == 0
    files_before = sorted(i.key for i in LocalStore(two_versions).list("etfs/"))
    # When publishing exactly 1.0.1 again
    result = ts(
        two_versions, "publish", str(seed["smh"]), "--model", "etfs/SMH", "--version", "1.0.1"
    )
    # Then it is refused (exit 2, one line) and nothing is written
    refused(
        result,
        "etfs/SMH 1.0.1 was used before (see the training history); versions are never reused",
    )
    assert sorted(i.key for i in LocalStore(two_versions).list("etfs/")) == files_before


def test_failed_registry_update_leaves_no_history_claim(store_path, seed, monkeypatch):
    # Given a store whose registry cannot be written
    def fail(key: str) -> None:
        if key == REGISTRY:
            raise StorageUnavailable("storage error on it: InternalError")

    monkeypatch.setattr(
        "tickerserve.cli.store_option.open_store",
        lambda **kw: FaultyStore(LocalStore(store_path), fail),
    )
    # When publishing with an alias
    result = ts(store_path, "publish", str(seed["smh"]), "-m", "etfs/SMH", "--alias", "production")
    # Then the publish fails, says the version is there but production did not move and how to
    # move it, and the training history does not claim the alias moved
    assert result.exit_code == 1
    assert result.stderr == (
        "error: published etfs/SMH 1.0.0 (written and recorded) but the registry update "
        "failed, so production did not move: storage error on it: InternalError; "
        "`tickerserve promote etfs/SMH 1.0.0 --alias production`\n"
    )
    assert read_records(LocalStore(store_path), TRAINING_HISTORY_KEY).records == []
    assert read_index(LocalStore(store_path), "etfs/SMH").index.digest("1.0.0") is not None


@pytest.mark.parametrize(
    "failure",
    [Conflict("lost 20 races in a row"), StorageUnavailable("storage error on it: SlowDown")],
    ids=["conflict", "storage"],
)
def test_a_publish_whose_history_append_fails_says_production_moved(
    store_path, seed, monkeypatch, failure
):
    # Given a store whose training history cannot be appended to
    def fail(key: str) -> None:
        if key == TRAINING_HISTORY_KEY:
            raise failure

    monkeypatch.setattr(
        "tickerserve.cli.store_option.open_store",
        lambda **kw: FaultyStore(LocalStore(store_path), fail),
    )
    # When publishing with an alias
    result = ts(store_path, "publish", str(seed["smh"]), "-m", "etfs/SMH", "--alias", "production")
    # Then production did move, and the outcome says so: exit 1 (a failure, not "refused,
    # nothing written"), the usual lines on stdout, and one error line naming what is missing
    registry = registry_of(store_path)
    assert registry.models["etfs/SMH"].aliases["production"].version == "1.0.0"
    assert result.exit_code == 1
    assert "production -> 1.0.0 (registry revision 1)" in result.stdout
    assert result.stderr.splitlines()[-1] == (
        "error: published etfs/SMH 1.0.0 (registry revision 1, production -> 1.0.0), but the "
        f"training history was not updated: {failure.message}"
    )


def test_a_publish_whose_digest_cannot_be_recorded_moves_nothing(store_path, seed, monkeypatch):
    def fail(key: str) -> None:
        if key == index_key("etfs/SMH"):
            raise StorageUnavailable("storage error on it: InternalError")

    monkeypatch.setattr(
        "tickerserve.cli.store_option.open_store",
        lambda **kw: FaultyStore(LocalStore(store_path), fail),
    )
    result = ts(store_path, "publish", str(seed["smh"]), "-m", "etfs/SMH", "--alias", "production")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: wrote etfs/SMH 1.0.0 (its folder is complete) but could not record its digest: "
        "storage error on it: InternalError; nothing serves it and no alias moved"
    )
    assert registry_of(store_path).models == {}


# -- a model.txt LightGBM cannot parse (a real garbled file, its sha256 recorded) ----------
@pytest.mark.parametrize("kind", GARBLED_KINDS)
def test_publish_refuses_a_native_folder_lightgbm_cannot_parse(tmp_path, models, kind):
    store = published_smh(tmp_path / "store", models)
    # Given a native bundle folder whose model.txt is malformed (its sha256 recorded correctly)
    bundle = garbled_bundle(models, kind)
    folder = tmp_path / "native"
    folder.mkdir()
    (folder / "model.txt").write_bytes(bundle.files["model.txt"])
    (folder / "metadata.json").write_bytes(bundle.metadata_bytes)
    before = sorted(i.key for i in store.list(""))
    # When it is published
    result = cli(
        "--store", str(store.root), "publish", str(folder), "-m", "etfs/SMH", "-a", "production"
    )
    # Then it is refused with one line naming the file and LightGBM's complaint
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {folder}: ")
    assert CRASHED in result.stderr
    assert result.stderr.count("\n") == 1
    # And nothing was written
    assert sorted(i.key for i in store.list("")) == before


# -- every family the seeds bring, from a folder or one pickle file: each checked on probe rows
# and served answering what the original answers -----------------------------------------------
def publish_json(store_path: str, src: Path, model: str, *extra: str) -> dict[str, Any]:
    return cli_json(
        "--store", store_path, "publish", str(src), "--model", model, "-a", "production", *extra
    )


def answer_for(
    store_path: str, tmp_path: Path, model: str, names: list[str], row: np.ndarray
) -> Any:
    settings = Settings(store_path=store_path, cache_dir=str(tmp_path / "cache"))
    api = Api(ModelService(settings))
    route = cli("--store", store_path, "route", "ZZZ", "--model", model, "--asset-class", "stock")
    assert route.exit_code == 0, route.stderr
    body = {"ticker": "ZZZ", "features": dict(zip(names, map(float, row), strict=True))}
    return api.handle(body, None)


def family_rows(n: int, width: int) -> np.ndarray:
    return np.random.default_rng(8).normal(scale=1.5, size=(n, width))


def test_xgboost_pickle_in_a_folder(store_path, tmp_path):
    # Given a folder with a joblib XGBClassifier (fitted with feature names)
    clf = originals().registry["1.0.1"]
    folder = tmp_path / "xgb"
    folder.mkdir()
    joblib.dump(clf, folder / "model.joblib")
    # When published / Then it is a Treelite member checked on probe rows
    out = publish_json(store_path, folder, "stocks/universal")
    assert out["source"]["estimator"] == "XGBClassifier"
    assert out["source"]["probe_rows"] == 256 and out["source"]["max_abs_diff"] <= 1e-7
    row = family_rows(1, len(FEATURES))[0]
    got = answer_for(store_path, tmp_path, "stocks/universal", list(FEATURES), row)
    want = clf.predict_proba(row.reshape(1, -1))[0]
    assert np.allclose(list(got["probabilities"].values()), want, atol=1e-7)


def test_sklearn_pickle_without_names_is_named_by_position(store_path, tmp_path):
    # Given a pickled RandomForestRegressor fitted on a bare array
    x = family_rows(120, 4)
    forest = RandomForestRegressor(n_estimators=6, max_depth=4, random_state=0, n_jobs=1)
    forest.fit(x, x[:, 0] - x[:, 1])
    file = tmp_path / "forest.pkl"
    file.write_bytes(pickle.dumps(forest))
    # When published without names / Then its features are feature_0 ... feature_3, said once
    result = cli("--store", store_path, "publish", str(file), "--model", "stocks/VOL",
                 "-a", "production")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        f"warning: {file}: no feature names (the seed lists none and the estimator was fitted "
        "on arrays): named feature_0 ... feature_3; requests send them by those names or as "
        "a list of 4 values in training order (--features FILE names them)"
    )
    row = family_rows(2, 4)[1]
    want = forest.predict(row.reshape(1, -1))[0]
    got = answer_for(store_path, tmp_path, "stocks/VOL", [f"feature_{i}" for i in range(4)], row)
    assert got["prediction"] == pytest.approx(want, abs=1e-12)
    # And a request may send the values as a list in that order
    api = Api(ModelService(Settings(store_path=store_path, cache_dir=str(tmp_path / "c2"))))
    listed = api.handle({"ticker": "ZZZ", "features": [float(v) for v in row]}, None)
    assert listed["prediction"] == pytest.approx(want, abs=1e-12)
    # When published with --features / Then it answers by those names, like the forest
    names = tmp_path / "names.json"
    names.write_text(json.dumps(["a", "b", "c", "d"]))
    out = publish_json(store_path, file, "stocks/VOL", "--features", str(names))
    assert (out["version"], out["source"]["warnings"]) == ("1.0.1", [])
    got = answer_for(store_path, tmp_path / "again", "stocks/VOL", ["a", "b", "c", "d"], row)
    assert got["prediction"] == pytest.approx(want, abs=1e-12)


def test_seed_002_dict_file(store_path, tmp_path):
    # Given one of seed 002's dated pickles
    artifact = originals().ensembles["AAPL_h1_20250121.pkl"]
    file = tmp_path / "AAPL_h1_20250121.pkl"
    file.write_bytes(pickle.dumps(artifact))
    # When published / Then a weighted ensemble with the seed's metrics and agreement
    out = publish_json(store_path, file, "stocks/AAPL/h1")
    assert out["source"]["estimator"] == "RandomForestClassifier+GradientBoostingClassifier"
    assert out["metrics"]["ensemble_accuracy"] == 0.601
    row = family_rows(1, len(FEATURES))[0]
    got = answer_for(store_path, tmp_path, "stocks/AAPL/h1", list(FEATURES), row)
    want = ensemble_predict(artifact, row.reshape(1, -1))[0]
    assert np.allclose(list(got["probabilities"].values()), want, atol=1e-12)
    assert "agreement" in got


def test_seed_003_dict_in_a_folder(store_path, tmp_path):
    # Given a folder holding seed 003's stack dict as model.pkl
    artifact = originals().stacks["model_90pct.pkl"]
    folder = tmp_path / "vol"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps(artifact))
    # When published (text output) / Then a regression stack, checked on probe rows
    result = cli("--store", store_path, "publish", str(folder), "--model", "etfs/SPY/vol", "-a",
                 "production")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "(converted XGBRegressor+LGBMRegressor+Ridge, checked on 256 probe rows" in (
        result.stdout
    )
    assert "8 features, regression)" in result.stdout
    row = family_rows(1, len(VOL_FEATURES))[0]
    got = answer_for(store_path, tmp_path, "etfs/SPY/vol", VOL_FEATURES, row)
    want = stack_predict(artifact, row.reshape(1, -1))[0]
    assert got["prediction"] == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_a_checkpoint_torch_cannot_read_is_refused_saying_so(store_path, tmp_path):
    folder = tmp_path / "gru"
    folder.mkdir()
    (folder / "model.pth").write_bytes(b"PK\x03\x04")
    (folder / "preprocessor.pkl").write_bytes(pickle.dumps({"mean": 0}))
    result = cli("--store", store_path, "publish", str(folder), "--model", "stocks/BTC")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(
        f"error: {folder / 'model.pth'}: torch cannot load it: RuntimeError: "
        "PytorchStreamReader failed reading zip archive"
    )
    assert not (Path(store_path) / "stocks").exists()


# -- --route never moves a live route ------------------------------------------------------
def test_publish_route_keeps_a_route_that_points_elsewhere_unless_taken(tmp_path: Path):
    # Given AAPL routed to the universal model
    m = seed_models()
    universal = seed_folder(tmp_path / "seed/universal", m.universal, m.universal_encoder)
    own = seed_folder(tmp_path / "seed/aapl", m.smh, m.smh_encoder)
    store = str(tmp_path / "store")
    first = cli("--store", store, "publish", str(universal), "-m", "stocks/universal",
                "-a", "production", "--route", "AAPL")  # fmt: skip
    assert first.exit_code == 0, first.stderr
    # When a model of its own is published with --route AAPL
    result = cli("--store", store, "publish", str(own), "-m", "stocks/AAPL", "-a", "production",
                 "--route", "AAPL", "--json")  # fmt: skip
    # Then the version and its alias are published, and AAPL keeps its route, listed
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["version"], report["aliases"], report["kept_routes"]) == (
        "1.0.0", ["production"], ["AAPL"],
    )  # fmt: skip
    [change] = report["route_changes"]
    assert (change["old"], change["model"], change["action"]) == (
        "stocks/universal", "stocks/AAPL", "keep",
    )  # fmt: skip
    registry = registry_of(store)
    assert registry.route("AAPL").model == "stocks/universal"
    # And the text output says how to move it
    again = cli("--store", store, "publish", str(own), "-m", "stocks/AAPL", "--route", "AAPL",
                "-a", "staging")  # fmt: skip
    assert "AAPL strategy keeps stocks/universal; --take-routes moves it to stocks/AAPL" in (
        again.stdout
    )
    # When published with --take-routes, Then the route moves and the output says old → new
    taken = cli("--store", store, "publish", str(own), "-m", "stocks/AAPL", "-a", "production",
                "--route", "AAPL", "--take-routes")  # fmt: skip
    assert taken.exit_code == 0, taken.stderr
    assert "route AAPL strategy: stocks/universal → stocks/AAPL" in taken.stdout
    registry = registry_of(store)
    assert registry.route("AAPL").model == "stocks/AAPL"


def test_publish_route_on_another_signal_sits_beside_the_ticker_s_model(tmp_path: Path):
    m = seed_models()
    universal = seed_folder(tmp_path / "seed/universal", m.universal, m.universal_encoder)
    vol = seed_folder(tmp_path / "seed/vol", m.smh, m.smh_encoder)
    store = str(tmp_path / "store")
    cli("--store", store, "publish", str(universal), "-m", "stocks/universal", "-a",
        "production", "--route", "AAPL")  # fmt: skip
    result = cli("--store", store, "publish", str(vol), "-m", "stocks/AAPL/volatility", "-a",
                 "production", "--route", "AAPL", "--signal", "volatility")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "route AAPL volatility: (none) → stocks/AAPL/volatility" in result.stdout
    registry = registry_of(store)
    assert registry.route("AAPL").model == "stocks/universal"
    assert registry.route("AAPL", signal="volatility").model == "stocks/AAPL/volatility"


# -- networks --------------------------------------------------------------------------------
def api_for(store_path: str, tmp_path: Path) -> Api:
    settings = Settings(store_path=store_path, cache_dir=str(tmp_path / "api-cache"))
    return Api(ModelService(settings))


def test_publish_a_gru_run_serves_windows_as_its_torch_original(store_path, tmp_path):
    # Given seed 001's GRU run folder (model.pth, metadata.json, config.json, preprocessor.pkl)
    network = networks()["gru"]
    # When it is published with an alias and a route
    result = ts(
        store_path,
        "publish",
        str(network.folder),
        "--model",
        "crypto/BTCEUR",
        "--asset-class",
        "stock",
        "--alias",
        "production",
        "--route",
        "BTCEUR",
    )
    # Then the summary says what it was converted to and how it was checked
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(
        f"published crypto/BTCEUR 1.0.0 to {LocalStore(store_path).describe()} (converted GRU "
        "to ONNX, checked on 256 windows (max diff "
    )
    assert "; 8 rows x 5 features, regression) in " in result.stdout
    # And a window sent by name answers what the torch module answers
    window = np.random.default_rng(3).normal(scale=5, size=(8, 5))
    used = network.converted.bundle.metadata.used_features
    rows = [dict(zip(used, r.tolist(), strict=True)) for r in window]
    body = api_for(store_path, tmp_path).handle({"ticker": "BTCEUR", "features": rows}, None)
    want = gru_answers(network, window[None])[0, 0]
    assert body["prediction"] == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_publish_json_reports_the_network_and_its_relative_difference(store_path):
    out = cli_json(
        "--store",
        store_path,
        "publish",
        str(networks()["ppo"].folder),
        "--model",
        "crypto/BTCEUR/ppo",
    )
    assert out["source"]["network"] == {
        "input": "observation",
        "shape": [6],
        "value": True,
        "policy": {"action_space": "discrete", "labelled": True},
    }
    assert out["source"]["probe_rows"] == 256 and out["source"]["max_relative_diff"] < 1e-5
    assert out["source"]["classes"] == ["hold", "buy", "sell"]


def test_publish_a_gru_without_a_recorded_window_needs_window(store_path, tmp_path):
    model, pre = train_gru(3, window=4, seed=9)
    folder = write_gru_run(tmp_path / "run", model, pre, window=4, record_window=False, config={})
    refused(
        ts(store_path, "publish", str(folder), "--model", "x/gru"),
        f"{folder / 'model.pth'}: the window length is recorded nowhere (metadata.json "
        "sequence_length, config.json, model_config): give --window N",
    )
    assert not (Path(store_path) / "x").exists()
    result = ts(store_path, "publish", str(folder), "--model", "x/gru", "--window", "4")
    assert result.exit_code == 0, result.stderr
    assert "; 4 rows x 3 features, regression)" in result.stdout


def test_publish_a_teams_own_onnx_export(store_path, tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    net = networks()["gru_multi"].converted.bundle
    (folder / "model.onnx").write_bytes(net.files["model.onnx"])
    (folder / "network.json").write_text(
        json.dumps(
            {
                "feature_names": ["a", "b", "c", "d"],
                "window": 5,
                "input_name": "window",
                "outputs": ["ret_1h", "ret_4h"],
                "model_type": "gru",
            }
        )
    )
    out = cli_json("--store", store_path, "publish", str(folder), "--model", "team/gru")
    assert (out["source"]["kind"], out["source"]["estimator"]) == ("native", "onnx")
    assert out["source"]["network"]["outputs"] == ["ret_1h", "ret_4h"]


def test_publish_a_network_without_torch_names_the_install_line(store_path, monkeypatch):
    # Given a machine without torch (imports of it fail)
    monkeypatch.setitem(sys.modules, "torch", None)
    folder = networks()["gru"].folder
    # Then the refusal names the extra to install, and nothing is written
    refused(
        ts(store_path, "publish", str(folder), "--model", "x/gru"),
        f"{folder / 'model.pth'}: a GRU checkpoint (model.pth) is converted with torch, which "
        "is not installed here: pip install 'tickerserve[networks]' (torch's CPU build, "
        "without the CUDA libraries: pip install torch --index-url "
        "https://download.pytorch.org/whl/cpu first)",
    )
    assert not (Path(store_path) / "x").exists()
