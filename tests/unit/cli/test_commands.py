"""The command line against a local folder store: every command, its output and refusals."""

from __future__ import annotations

import json

import pytest

from tests.cli_support import FaultyStore, cli, cli_json
from tests.seed_support import seed_folder, seed_models, write_seed_tree
from tickerserve.errors import Conflict, StorageUnavailable
from tickerserve.http.api import Api
from tickerserve.layout import TRAINING_HISTORY_KEY, artifact_key, index_key, metadata_key
from tickerserve.publishing.release import with_identity
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.bundle import read_bundle
from tickerserve.storage.history import read_records
from tickerserve.storage.registry import read_registry
from tickerserve.storage.store import LocalStore, sha256_hex
from tickerserve.storage.version_index import read_index

REGISTRY = "metadata/asset_registry.json"


@pytest.fixture
def store_path(tmp_path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def seed(tmp_path):
    m = seed_models()
    return {
        "smh": seed_folder(tmp_path / "seed/smh", m.smh, m.smh_encoder),
        "universal": seed_folder(tmp_path / "seed/universal", m.universal, m.universal_encoder),
    }


def ts(store_path: str, *args: str):
    return cli("--store", store_path, *args)


def refused(result, message: str) -> None:
    """Exit code 2, the exact one-line message on stderr, nothing on stdout."""
    assert (result.exit_code, result.stderr, result.stdout) == (2, f"error: {message}\n", "")


def _registry(store_path: str):
    return read_registry(LocalStore(store_path), REGISTRY).registry


# -- global options ------------------------------------------------------------------------
def test_help_lists_every_command():
    result = cli("--help")
    assert result.exit_code == 0
    for command in (
        "publish",
        "import-seed",
        "sync",
        "route",
        "fallback",
        "promote",
        "rollback",
        "list",
        "best",
        "show",
        "history",
        "delete",
        "validate",
        "capture",
        "shadow",
        "canary",
        "outcomes",
    ):
        assert command in result.stdout


def test_no_store_configured():
    refused(
        cli("list"),
        "no model store: pass --bucket NAME or --store PATH "
        "(or set TICKERSERVE_BUCKET / TICKERSERVE_STORE_PATH)",
    )


def test_bucket_and_store_together_are_refused(store_path):
    refused(
        cli("--bucket", "b", "--store", store_path, "list"),
        "give either --bucket or --store, not both",
    )


def test_store_from_environment_and_flag_wins(tmp_path, seed, store_path):
    # Given a model published into the folder named by TICKERSERVE_STORE_PATH
    env = {"TICKERSERVE_STORE_PATH": store_path, "TICKERSERVE_BUCKET": ""}
    assert cli("publish", str(seed["smh"]), "--model", "etfs/SMH", env=env).exit_code == 0
    # When listing via the environment, and via --store elsewhere despite the variable
    via_env = cli("list", "--json", env=env)
    via_flag = cli("--store", str(tmp_path / "other"), "list", "--json", env=env)
    # Then the variable is used only when no flag is given
    assert [r["model"] for r in json.loads(via_env.stdout)] == ["etfs/SMH"]
    assert json.loads(via_flag.stdout) == []


# -- publish -------------------------------------------------------------------------------
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
    assert _registry(store_path).models["etfs/SMH"].aliases["production"].version == "1.0.0"
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
    assert "routed SMH, SOXX -> etfs/SMH" in result.stdout
    registry = _registry(store_path)
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


def test_model_names_typed_in_any_case_are_one_model(store_path, seed):
    # Given etfs/smh published, then ETFS/Smh
    assert ts(store_path, "publish", str(seed["smh"]), "--model", "etfs/smh").exit_code == 0
    assert ts(store_path, "publish", str(seed["smh"]), "--model", "ETFS/Smh").exit_code == 0
    # Then there is one model, etfs/SMH, with two versions, found whatever the spelling
    listed = cli_json("--store", store_path, "list")
    assert {(r["model"], r["version"]) for r in listed} == {
        ("etfs/SMH", "1.0.0"),
        ("etfs/SMH", "1.0.1"),
    }
    assert cli_json("--store", store_path, "show", "etfs/smh@1.0.1")["model"] == "etfs/SMH"


def test_a_bare_ticker_as_model_name_is_refused_with_the_model_that_serves_it(store_path, seed):
    # Given SMH routed to etfs/SMH and AAPL to the universal model
    ts(store_path, "publish", str(seed["smh"]), "-m", "etfs/SMH", "-a", "production", "-r", "SMH")
    ts(
        store_path,
        "publish",
        str(seed["universal"]),
        "-m",
        "stocks/universal",
        "-a",
        "production",
        "-r",
        "AAPL",
    )
    before = sorted(o.key for o in LocalStore(store_path).list(""))
    # When a bare ticker is given as a model name; Then the hint names the routed model
    refused(
        ts(store_path, "publish", str(seed["smh"]), "--model", "smh"),
        "model name 'smh' has no group folder: models are named like etfs/SMH, "
        "stocks/universal or team/model; did you mean etfs/SMH?",
    )
    assert ts(store_path, "promote", "AAPL", "1.0.0").stderr.endswith(
        "did you mean stocks/universal?\n"
    )
    assert ts(store_path, "show", "QQQ").stderr.endswith("did you mean etfs/QQQ?\n")
    assert sorted(o.key for o in LocalStore(store_path).list("")) == before


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


# -- promote / rollback --------------------------------------------------------------------
@pytest.fixture
def two_versions(store_path, seed):
    """etfs/SMH 1.0.0 (production) and 1.0.1 (no alias), SMH routed."""
    ts(store_path, "publish", str(seed["smh"]), "--model", "etfs/SMH", "--alias", "production")
    ts(store_path, "publish", str(seed["smh"]), "--model", "etfs/SMH")
    assert ts(store_path, "route", "SMH", "--model", "etfs/SMH").exit_code == 0
    return store_path


def test_promote_then_rollback(two_versions):
    # When 1.0.1 is promoted
    promoted = ts(two_versions, "promote", "etfs/SMH", "1.0.1")
    # Then production moves and the message says from where to where
    assert promoted.stdout == "etfs/SMH production: 1.0.0 -> 1.0.1 (registry revision 4)\n"
    # When rolled back
    rolled = cli_json("--store", two_versions, "rollback", "etfs/SMH")
    # Then it is back on 1.0.0 and a second rollback has nowhere to go
    assert (rolled["from"], rolled["to"], rolled["revision"]) == ("1.0.1", "1.0.0", 5)
    refused(
        ts(two_versions, "rollback", "etfs/SMH"),
        "etfs/SMH production has no earlier version to roll back to",
    )


def test_promote_refuses_corrupt_and_missing_versions(two_versions):
    # Given 1.0.1's model.txt is altered in the store
    path = LocalStore(two_versions).root / artifact_key("etfs/SMH", "1.0.1", "model.txt")
    path.write_bytes(path.read_bytes() + b" ")
    before = _registry(two_versions).revision
    # Then promoting it, or a version that does not exist, is refused and nothing moves
    refused(
        ts(two_versions, "promote", "etfs/SMH", "1.0.1"),
        "refusing etfs/SMH 1.0.1: etfs/SMH 1.0.1: artifact model.txt fails sha256 verification",
    )
    refused(
        ts(two_versions, "promote", "etfs/SMH", "2.0.0"),
        "refusing etfs/SMH 2.0.0: etfs/SMH 2.0.0 does not exist",
    )
    assert _registry(two_versions).revision == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--alias", "staging\n"],
            "invalid alias 'staging\\n': lower-case letters, digits, _ and -",
        ),
        (
            [],
            "invalid version '1.0.1\\n': expected MAJOR.MINOR.PATCH, e.g. 1.0.2",
        ),
    ],
)
def test_promote_refuses_names_with_a_trailing_newline(two_versions, args, message):
    # Given a name a shell can pass with a trailing newline ($'staging\n')
    before = _registry(two_versions)
    version = "1.0.1" if args else "1.0.1\n"
    # When promoting with it, Then it is refused and the registry keeps its names
    refused(ts(two_versions, "promote", "etfs/SMH", version, *args), message)
    after = _registry(two_versions)
    assert after.revision == before.revision
    assert set(after.models["etfs/SMH"].aliases) == {"production"}


def test_promote_refuses_incomplete_version(two_versions):
    LocalStore(two_versions).put(artifact_key("etfs/SMH", "1.0.2", "model.txt"), b"x")
    refused(
        ts(two_versions, "promote", "etfs/SMH", "1.0.2"),
        "refusing etfs/SMH 1.0.2: etfs/SMH 1.0.2 is incomplete (no metadata.json)",
    )


def test_rollback_refuses_a_corrupt_previous_version(two_versions):
    ts(two_versions, "promote", "etfs/SMH", "1.0.1")
    path = LocalStore(two_versions).root / artifact_key("etfs/SMH", "1.0.0", "model.txt")
    path.write_bytes(b"tampered")
    refused(
        ts(two_versions, "rollback", "etfs/SMH"),
        "refusing etfs/SMH 1.0.0: etfs/SMH 1.0.0: artifact model.txt fails sha256 verification",
    )
    assert _registry(two_versions).models["etfs/SMH"].aliases["production"].version == "1.0.1"


# -- route / fallback ----------------------------------------------------------------------
def test_route_and_remove(two_versions):
    out = cli_json("--store", two_versions, "route", "soxx", "smh", "--model", "etfs/SMH")
    assert out["routed"] == {
        "SOXX": {"model": "etfs/SMH", "asset_class": "etf"},
        "SMH": {"model": "etfs/SMH", "asset_class": "etf"},
    }
    removed = ts(two_versions, "route", "--remove", "SOXX")
    assert removed.stdout == "removed SOXX (registry revision 5)\n"
    assert set(_registry(two_versions).tickers) == {"SMH"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["route", "AAPL", "--model", "stocks/universal"],
            "model stocks/universal has no published alias; publish or promote it first",
        ),
        (
            ["route", "AAPL", "--model", "custom/m1"],
            "--asset-class is required for model custom/m1",
        ),
        (["route", "AAPL"], "give either --model NAME or --remove"),
        (["route", "--remove", "AAPL"], "not routed: AAPL"),
        (
            ["route", "A/B", "--model", "etfs/SMH"],
            "invalid ticker 'A/B': 1-15 ASCII letters, digits, '.', '-', '^', '='",
        ),
        (["fallback", "stock"], "give either --model NAME or --none"),
        (
            ["fallback", "stock", "--model", "stocks/universal"],
            "model stocks/universal has no published alias; publish or promote it first",
        ),
    ],
)
def test_route_refusals(two_versions, args, message):
    before = _registry(two_versions)
    refused(ts(two_versions, *args), message)
    assert _registry(two_versions) == before


def test_fallback_set_and_remove(two_versions):
    assert ts(two_versions, "fallback", "etf", "--model", "etfs/SMH").stdout == (
        "fallback etf -> etfs/SMH (registry revision 4)\n"
    )
    assert _registry(two_versions).fallbacks == {"etf": "etfs/SMH"}
    assert ts(two_versions, "fallback", "etf", "--none").exit_code == 0
    assert _registry(two_versions).fallbacks == {}


# -- list / best / show --------------------------------------------------------------------
@pytest.fixture
def versions_store(store_path, seed):
    """SMH 1.0.0 (accuracy .61, production), SMH 1.0.1 (accuracy .7), universal 1.0.0 (.52),
    and an incomplete SMH 1.0.2."""
    ts(store_path, "publish", str(seed["smh"]), "--model", "etfs/SMH", "--alias", "production")
    ts(store_path, "publish", str(seed["smh"]), "--model", "etfs/SMH", "--metrics", "accuracy=0.7")
    ts(
        store_path,
        "publish",
        str(seed["universal"]),
        "--model",
        "stocks/universal",
        "-a",
        "production",
        "--metrics",
        "accuracy=0.52",
    )
    ts(store_path, "route", "AAPL", "MSFT", "--model", "stocks/universal")
    LocalStore(store_path).put(artifact_key("etfs/SMH", "1.0.2", "model.txt"), b"partial")
    return store_path


def test_list_flags_incomplete_versions(versions_store):
    rows = cli_json("--store", versions_store, "list")
    assert [(r["model"], r["version"], r["status"], r["aliases"]) for r in rows] == [
        ("etfs/SMH", "1.0.0", "ok", ["production"]),
        ("etfs/SMH", "1.0.1", "ok", []),
        ("etfs/SMH", "1.0.2", "incomplete", []),
        ("stocks/universal", "1.0.0", "ok", ["production"]),
    ]
    text = ts(versions_store, "list").stdout.splitlines()
    assert text[0].split() == [
        "MODEL",
        "VERSION",
        "STATUS",
        "ALIASES",
        "TYPE",
        "CREATED",
        "METRICS",
    ]
    assert text[3].split()[:3] == ["etfs/SMH", "1.0.2", "incomplete"]


def test_list_filters(versions_store):
    def versions(*args):
        return [
            (r["model"], r["version"]) for r in cli_json("--store", versions_store, "list", *args)
        ]

    assert versions("--min-metric", "accuracy=0.6") == [
        ("etfs/SMH", "1.0.0"),
        ("etfs/SMH", "1.0.1"),
    ]
    assert versions("--name", "stocks/") == [("stocks/universal", "1.0.0")]
    assert versions("--model-type", "xgboost") == []
    assert versions("--min-metric", "accuracy=0.6", "--min-metric", "sharpe=1") == []
    refused(
        ts(versions_store, "list", "--min-metric", "accuracy"),
        "--min-metric 'accuracy': expected NAME=NUMBER",
    )


def test_best(versions_store):
    assert ts(versions_store, "best", "--metric", "accuracy").stdout == (
        "etfs/SMH 1.0.1: accuracy=0.7 (highest of 3 versions)\n"
    )
    lowest = cli_json("--store", versions_store, "best", "--metric", "accuracy", "--lowest")
    assert (lowest["model"], lowest["value"]) == ("stocks/universal", 0.52)
    only_etfs = cli_json(
        "--store", versions_store, "best", "--metric", "accuracy", "--lowest", "--name", "etfs/"
    )
    assert (only_etfs["model"], only_etfs["version"]) == ("etfs/SMH", "1.0.0")
    refused(ts(versions_store, "best", "--metric", "sortino"), "no version has metric 'sortino'")


def test_show_resolves_alias_version_and_default(versions_store):
    default = cli_json("--store", versions_store, "show", "stocks/universal")
    assert (default["version"], default["aliases"], default["tickers"]) == (
        "1.0.0",
        ["production"],
        ["AAPL", "MSFT"],
    )
    assert default["classes"] == sorted(default["classes"])  # LabelEncoder order
    assert len(default["feature_names"]) == 12
    assert set(default["artifacts"]) == {"model.txt"}
    pinned = cli_json("--store", versions_store, "show", "etfs/SMH@1.0.1")
    assert (pinned["version"], pinned["aliases"], pinned["tickers"]) == ("1.0.1", [], [])
    incomplete = cli_json("--store", versions_store, "show", "etfs/SMH@1.0.2")
    assert (incomplete["status"], incomplete["problem"]) == ("incomplete", "metadata.json missing")
    refused(ts(versions_store, "show", "etfs/SMH@staging"), "model etfs/SMH has no alias 'staging'")
    refused(ts(versions_store, "show", "etfs/SMH@3.0.0"), "etfs/SMH 3.0.0 does not exist")


def test_show_text(versions_store):
    lines = ts(versions_store, "show", "etfs/SMH").stdout.splitlines()
    assert lines[0] == "etfs/SMH 1.0.0  [ok]"
    assert lines[1] == "aliases:   production   (model: production=1.0.0)"
    assert "features:  12 used of 12: rsi_14, iv_rank" in "\n".join(lines)


# -- delete / validate / history -----------------------------------------------------------
def test_delete(versions_store):
    # Given production on SMH 1.0.0
    # Then deleting it is refused, deleting 1.0.1 and the incomplete 1.0.2 works
    refused(
        ts(versions_store, "delete", "etfs/SMH", "1.0.0"),
        "refusing to delete etfs/SMH 1.0.0: alias production points at it",
    )
    assert (
        ts(versions_store, "delete", "etfs/SMH", "1.0.1").stdout
        == "deleted etfs/SMH 1.0.1: 2 files\n"
    )
    assert ts(versions_store, "delete", "etfs/SMH", "1.0.2").stdout == (
        "deleted etfs/SMH 1.0.2 (incomplete): 1 files\n"
    )
    assert [
        r["version"] for r in cli_json("--store", versions_store, "list", "--name", "etfs/")
    ] == ["1.0.0"]
    refused(ts(versions_store, "delete", "etfs/SMH", "1.0.1"), "etfs/SMH 1.0.1 does not exist")
    # And the history marks the deleted publish
    history = cli_json("--store", versions_store, "history", "training", "--model", "etfs/SMH")
    published = [r for r in history if r["event"] == "published"]
    assert [("deleted_at" in r) for r in published] == [False, True]
    assert history[-1]["event"] == "deleted"


def test_an_interrupted_delete_blocks_aliases_and_finishes_when_run_again(
    two_versions, monkeypatch
):
    # Given a delete of 1.0.1 that dies while removing files (after the registry and the
    # digest index were marked)
    def fail(key: str) -> None:
        raise StorageUnavailable("storage error on it: InternalError")

    failing = FaultyStore(LocalStore(two_versions))
    failing.inner.delete = lambda keys: fail(keys[0])  # type: ignore[method-assign]
    monkeypatch.setattr("tickerserve.cli.store_option.open_store", lambda **kw: failing)
    assert ts(two_versions, "delete", "etfs/SMH", "1.0.1").exit_code == 1
    monkeypatch.undo()
    assert "1.0.1" in _registry(two_versions).deleting["etfs/SMH"]
    # Then no alias may move to it meanwhile, with a message that says what to do
    promoted = ts(two_versions, "promote", "etfs/SMH", "1.0.1")
    assert promoted.exit_code == 2
    assert promoted.stderr.startswith("error: refusing etfs/SMH 1.0.1: etfs/SMH 1.0.1 was deleted")
    assert "a delete was interrupted; `tickerserve delete etfs/SMH 1.0.1` finishes it" in (
        promoted.stderr
    )
    # When the delete runs again, Then it finishes and clears the mark
    again = ts(two_versions, "delete", "etfs/SMH", "1.0.1")
    assert again.exit_code == 0, again.stderr
    assert _registry(two_versions).deleting == {}
    assert LocalStore(two_versions).head(metadata_key("etfs/SMH", "1.0.1")) is None


def test_delete_drops_version_from_rollback_history(two_versions):
    # Given production moved 1.0.0 -> 1.0.1, so 1.0.0 is in the rollback history
    ts(two_versions, "promote", "etfs/SMH", "1.0.1")
    # When 1.0.0 is deleted
    assert ts(two_versions, "delete", "etfs/SMH", "1.0.0").exit_code == 0
    # Then rollback has nowhere to go (rather than pointing at a deleted version)
    refused(
        ts(two_versions, "rollback", "etfs/SMH"),
        "etfs/SMH production has no earlier version to roll back to",
    )


def test_validate(versions_store):
    result = ts(versions_store, "validate", "etfs/SMH")
    assert result.exit_code == 0
    assert result.stdout.startswith(
        "etfs/SMH 1.0.0 is valid: 1 artifact(s) verified, loaded, probe row -> "
    )
    pinned = cli_json("--store", versions_store, "validate", "etfs/SMH@1.0.1")
    assert (pinned["valid"], pinned["registry_digest_checked"]) == (True, False)
    path = LocalStore(versions_store).root / artifact_key("etfs/SMH", "1.0.0", "model.txt")
    path.write_bytes(b"tampered")
    broken = ts(versions_store, "validate", "etfs/SMH@production")
    assert (broken.exit_code, broken.stderr) == (
        1,
        "error: etfs/SMH 1.0.0 is not valid: etfs/SMH 1.0.0: artifact model.txt fails sha256 "
        "verification\n",
    )


def test_history_last(versions_store):
    records = cli_json("--store", versions_store, "history", "training", "--last", "1")
    assert [(r["model"], r["version"]) for r in records] == [("stocks/universal", "1.0.0")]
    assert ts(versions_store, "history", "monitoring").stdout == "no monitoring history\n"


# -- import-seed ---------------------------------------------------------------------------
def test_import_seed_dry_run_writes_nothing(tmp_path, store_path):
    write_seed_tree(tmp_path)
    report = cli_json("--store", store_path, "import-seed", str(tmp_path), "--dry-run")
    assert {m["model"]: m["status"] for m in report["models"]} == {
        "etfs/QQQ": "would publish",
        "etfs/SMH": "would publish",
        "etfs/XLF": "would publish",
        "stocks/universal": "would publish",
    }
    assert list(LocalStore(store_path).list("")) == []


def test_import_seed_then_reimport_is_a_no_op(tmp_path, store_path):
    # Given a seed tree with a registry and a monitoring history
    write_seed_tree(tmp_path)
    # When imported with an extra stock
    first = cli_json(
        "--store",
        store_path,
        "import-seed",
        str(tmp_path / "models_storage"),
        "--stocks",
        "NVDA,TSLA",
    )
    # Then every model is published as 1.0.0 with production, and routes follow the registry
    assert {m["model"]: (m["status"], m["version"]) for m in first["models"]} == {
        "etfs/QQQ": ("published", "1.0.0"),
        "etfs/SMH": ("published", "1.0.0"),
        "etfs/XLF": ("published", "1.0.0"),
        "stocks/universal": ("published", "1.0.0"),
    }
    assert {r["ticker"]: r["model"] for r in first["routes"]} == {
        "AAPL": "stocks/universal",
        "MSFT": "stocks/universal",
        "NVDA": "stocks/universal",
        "TSLA": "stocks/universal",
        "QQQ": "etfs/QQQ",
        "SMH": "etfs/SMH",
        "XLF": "etfs/XLF",
    }
    assert first["notes"] == ["skipped etfs/OLD: no production/ folder"]
    assert first["revision"] == 1
    assert len(cli_json("--store", store_path, "history", "monitoring")) == 2
    # When imported again
    second = cli_json("--store", store_path, "import-seed", str(tmp_path), "--stocks", "NVDA,TSLA")
    # Then nothing is re-published and the registry is not rewritten
    assert {m["status"] for m in second["models"]} == {"unchanged"}
    assert second["revision"] == 1
    assert len(cli_json("--store", store_path, "history", "monitoring")) == 2
    assert len(read_records(LocalStore(store_path), TRAINING_HISTORY_KEY).records) == 4


def test_import_seed_skips_a_model_that_fails_and_imports_the_rest(tmp_path, store_path):
    # Given a tree where one of four models has an unreadable pickle
    storage = write_seed_tree(tmp_path)
    bad = storage / "etfs/XLF/production/model.joblib"
    bad.write_bytes(b"garbage")
    # When imported
    result = ts(store_path, "import-seed", str(storage))
    # Then it exits 2, says what was skipped and why, and imports the other three
    assert result.exit_code == 2
    assert f"skipped etfs/XLF/production: cannot unpickle {bad}: " in result.stdout
    assert "not routed XLF: etfs/XLF has no production version" in result.stdout
    registry = _registry(store_path)
    assert sorted(registry.models) == ["etfs/QQQ", "etfs/SMH", "stocks/universal"]
    assert "XLF" not in registry.tickers
    assert list(LocalStore(store_path).list("etfs/XLF/")) == []


def test_import_seed_stock_fallback(tmp_path, store_path):
    write_seed_tree(tmp_path, registry=None)
    assert ts(store_path, "import-seed", str(tmp_path), "--stock-fallback").exit_code == 0
    registry = _registry(store_path)
    assert registry.fallbacks == {"stock": "stocks/universal"}
    assert registry.route("ZZZZ", "stock").model == "stocks/universal"
    assert set(registry.tickers) == {"QQQ", "SMH", "XLF"}


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


def test_reimport_replaces_a_corrupt_production_version(tmp_path, store_path):
    # Given an imported tree whose SMH production metadata.json was altered in the store
    write_seed_tree(tmp_path)
    assert ts(store_path, "import-seed", str(tmp_path)).exit_code == 0
    path = LocalStore(store_path).root / "etfs/SMH/versions/1.0.0/metadata.json"
    path.write_bytes(path.read_bytes().replace(b'"lightgbm"', b'"LightGBM"'))
    # When imported again
    report = cli_json("--store", store_path, "import-seed", str(tmp_path))
    # Then only SMH is published again (1.0.1) and production moves to it
    assert {m["model"]: (m["status"], m["version"]) for m in report["models"]}["etfs/SMH"] == (
        "published",
        "1.0.1",
    )
    assert {m["status"] for m in report["models"] if m["model"] != "etfs/SMH"} == {"unchanged"}
    assert _registry(store_path).models["etfs/SMH"].aliases["production"].version == "1.0.1"


# -- review fixes: digests of stored bytes, versions never reused --------------------------
def write_compact_version(root) -> bytes:
    """Write SMH 2.0.0 (a copy of 1.0.0) with metadata.json stored as compact JSON, not the
    indented form the publisher writes; return the stored metadata bytes."""
    store = LocalStore(root)
    bundle = with_identity(read_bundle(store, "etfs/SMH", "1.0.0"), "etfs/SMH", "2.0.0")
    for name, data in bundle.files.items():
        store.put(artifact_key("etfs/SMH", "2.0.0", name), data, create_only=True)
    compact = json.dumps(bundle.metadata.to_dict(), separators=(",", ":")).encode()
    store.put(metadata_key("etfs/SMH", "2.0.0"), compact, create_only=True)
    return compact


def test_promote_records_the_digest_of_the_stored_metadata_bytes(two_versions):
    # Given a valid version 2.0.0 whose metadata.json is stored as compact JSON (not the
    # indented form the publisher writes), written with create-only puts
    compact = write_compact_version(two_versions)
    # When it is promoted
    assert ts(two_versions, "promote", "etfs/SMH", "2.0.0").exit_code == 0
    # Then the registry records the sha256 of the stored bytes and the alias validates
    target = _registry(two_versions).models["etfs/SMH"].aliases["production"]
    assert (target.version, target.metadata_sha256) == ("2.0.0", sha256_hex(compact))
    validated = ts(two_versions, "validate", "etfs/SMH@production")
    assert (validated.exit_code, validated.stderr) == (0, "")


def test_rollback_after_promoting_compact_metadata_keeps_stored_digests(two_versions):
    # Given production moved to a compact-metadata 2.0.0 and then to 1.0.1
    compact = write_compact_version(two_versions)
    assert ts(two_versions, "promote", "etfs/SMH", "2.0.0").exit_code == 0
    assert ts(two_versions, "promote", "etfs/SMH", "1.0.1").exit_code == 0
    # When rolled back
    rolled = ts(two_versions, "rollback", "etfs/SMH")
    # Then production is on 2.0.0 again with the stored bytes' digest, and it validates
    assert rolled.exit_code == 0, rolled.stderr
    target = _registry(two_versions).models["etfs/SMH"].aliases["production"]
    assert (target.version, target.metadata_sha256) == ("2.0.0", sha256_hex(compact))
    assert ts(two_versions, "validate", "etfs/SMH@production").exit_code == 0


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
    registry = _registry(store_path)
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
    assert _registry(store_path).models == {}


def test_import_seed_failed_registry_update_leaves_no_history_claim(
    tmp_path, store_path, monkeypatch
):
    # Given a seed tree and a store whose registry cannot be written
    write_seed_tree(tmp_path)

    def fail(key: str) -> None:
        if key == REGISTRY:
            raise StorageUnavailable("storage error on it: InternalError")

    monkeypatch.setattr(
        "tickerserve.cli.store_option.open_store",
        lambda **kw: FaultyStore(LocalStore(store_path), fail),
    )
    # When importing it
    result = ts(store_path, "import-seed", str(tmp_path))
    # Then the import fails and no training record claims production moved
    assert result.exit_code == 1
    assert read_records(LocalStore(store_path), TRAINING_HISTORY_KEY).records == []


# -- usage errors and help ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "start"),
    [
        (["publish"], "error: missing argument"),
        (["--bogus", "list"], "error: no such option: --bogus"),
        (["nope"], "error: no such command 'nope'"),
        (["publish", ".", "--model", "etfs/SMH", "--bump", "huge"], "error: invalid value"),
        (["list", "--min-metric"], "error: option '--min-metric' requires an argument"),
    ],
)
def test_usage_errors_are_one_error_line_and_exit_code_2(args, start):
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(start)
    assert result.stderr.count("\n") == 1  # one line: no usage block, no box
    assert not any(c in result.stderr for c in "╭│╰")


def test_help_has_no_value_placeholder_after_flags_and_keeps_bracketed_text():
    for command in (["--help"], ["publish", "--help"], ["list", "--help"], ["serve", "--help"]):
        result = cli(*command)
        assert result.exit_code == 0
        assert "<bool>" not in result.stdout, command
    serve = cli("serve", "--help").stdout
    assert "Artifact cache folder (default: /tmp/tickerserve" in " ".join(serve.split())


def test_import_seed_whose_history_append_fails_says_what_is_live(
    tmp_path, store_path, monkeypatch
):
    write_seed_tree(tmp_path)

    def fail(key: str) -> None:
        if key == TRAINING_HISTORY_KEY:
            raise StorageUnavailable("storage error on it: SlowDown")

    monkeypatch.setattr(
        "tickerserve.cli.store_option.open_store",
        lambda **kw: FaultyStore(LocalStore(store_path), fail),
    )
    result = ts(store_path, "import-seed", str(tmp_path))
    # Then the usual report is printed (it is live), and the exit says what is missing
    assert result.exit_code == 1
    assert "registry revision 1" in result.stdout
    assert result.stderr.startswith("error: imported ")
    assert (
        "routes and aliases are live (registry revision 1), but the histories were not "
        "updated: storage error on it: SlowDown" in result.stderr
    )
    assert _registry(store_path).tickers
