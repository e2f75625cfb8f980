"""``capture``, ``shadow`` and ``canary`` commands, their display in ``show`` and
``GET /models/{ticker}``, and the warnings when an alias they name moves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_support import cli
from tests.support import REGISTRY_KEY, DemoModels
from tickerserve.http.api import Api
from tickerserve.publishing.release import publish_bundle
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.registry import CanarySettings, ShadowSettings, read_registry
from tickerserve.storage.store import LocalStore

SMH = "etfs/SMH"


@pytest.fixture
def store(tmp_path: Path, models: DemoModels) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    publish_bundle(store, models.smh, registry_key=REGISTRY_KEY, routes={"SMH": "etf"})
    publish_bundle(store, models.smh_v2, registry_key=REGISTRY_KEY, aliases=("challenger",))
    return store


def ts(store: LocalStore, *args: str) -> Any:
    return cli("--store", str(store.root), *args)


def entry(store: LocalStore) -> Any:
    return read_registry(store, REGISTRY_KEY).registry.models[SMH]


def test_shadow_on_and_off(store: LocalStore):
    result = ts(store, "shadow", SMH, "--alias", "challenger", "--sample", "0.5")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(
        f"{SMH} shadow: alias challenger (1.0.1), sample 0.5 (registry revision "
    )
    assert entry(store).shadow == ShadowSettings("challenger", 0.5)
    off = ts(store, "shadow", SMH, "--off", "--json")
    assert json.loads(off.stdout)["shadow"] is None
    assert entry(store).shadow is None


def test_canary_on_and_off(store: LocalStore):
    result = ts(store, "canary", SMH, "--alias", "challenger", "--weight", "0.1", "--json")
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["canary"] == {"alias": "challenger", "weight": 0.1, "version": "1.0.1"}
    assert entry(store).canary == CanarySettings("challenger", 0.1)
    assert ts(store, "canary", SMH, "--off").exit_code == 0
    assert entry(store).canary is None


def test_capture_sample(store: LocalStore):
    result = ts(store, "capture", SMH, "--sample", "0.25")
    assert result.stdout.startswith(f"{SMH} capture: sample 0.25 ")
    assert entry(store).capture.sample == 0.25
    ts(store, "capture", SMH, "--sample", "1")
    assert entry(store).capture is None  # back to the default: everything


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["shadow", SMH, "--alias", "staging"], "model etfs/SMH has no alias 'staging'"),
        (["shadow", SMH, "--alias", "production"], "must not be production"),
        (["shadow", SMH], "give either --alias ALIAS or --off"),
        (["shadow", SMH, "--alias", "challenger", "--off"], "give either --alias ALIAS or --off"),
        (["shadow", SMH, "--alias", "challenger", "--sample", "0"], "shadow sample"),
        (["canary", SMH, "--alias", "challenger"], "--weight W is required"),
        (["canary", SMH, "--alias", "challenger", "--weight", "1"], "canary weight"),
        (["canary", SMH, "--alias", "challenger", "--weight", "0"], "canary weight"),
        (["canary", "etfs/QQQ", "--alias", "challenger", "--weight", "0.1"], "no published alias"),
        (["capture", "etfs/QQQ"], "not in the registry"),
    ],
)
def test_bad_settings_are_refused_with_one_line(store: LocalStore, args: list[str], message: str):
    before = read_registry(store, REGISTRY_KEY).registry.revision
    result = ts(store, *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert read_registry(store, REGISTRY_KEY).registry.revision == before


def test_show_and_get_model_display_shadow_and_canary(store: LocalStore, tmp_path: Path):
    ts(store, "shadow", SMH, "--alias", "challenger")
    ts(store, "canary", SMH, "--alias", "challenger", "--weight", "0.2")
    text = ts(store, "show", SMH).stdout
    assert (
        "traffic:   capture 1, shadow challenger (1.0.1) sample 1, "
        "canary challenger (1.0.1) weight 0.2"
    ) in text
    shown = json.loads(ts(store, "show", SMH, "--json").stdout)["traffic"]
    assert shown["shadow"] == {"alias": "challenger", "sample": 1.0, "version": "1.0.1"}
    api = Api(ModelService(Settings(cache_dir=str(tmp_path / "c")), store=store))
    detail = api.handle({"action": "model", "ticker": "SMH"}, None)
    assert detail["shadow"] == shown["shadow"]
    assert detail["canary"] == {"alias": "challenger", "weight": 0.2, "version": "1.0.1"}
    assert detail["capture"] == {"sample": 1.0}


def test_moving_an_alias_a_shadow_or_canary_names_warns_and_says_how_to_turn_it_off(
    store: LocalStore,
):
    ts(store, "shadow", SMH, "--alias", "challenger")
    ts(store, "canary", SMH, "--alias", "challenger", "--weight", "0.1")
    moved = ts(store, "promote", SMH, "1.0.0", "--alias", "challenger")
    assert moved.exit_code == 0
    assert (
        f"warning: the shadow of {SMH} scores alias 'challenger' (now 1.0.0); "
        f"`tickerserve shadow {SMH} --off` turns it off"
    ) in moved.stderr
    assert f"`tickerserve canary {SMH} --off` turns it off" in moved.stderr
    back = ts(store, "rollback", SMH, "--alias", "challenger")
    assert "(now 1.0.1)" in back.stderr
    # Moving production says nothing about them
    assert ts(store, "promote", SMH, "1.0.1").stderr == ""


# -- a bad setting stays local, and a command repairs it (issue 19) --------------------------------


@pytest.mark.parametrize(
    ("name", "raw"),
    [("canary", {"alias": "challenger", "weight": 1.5}),
     ("canary", {"alias": "challenger", "weight": None}),
     ("shadow", {"alias": "challenger", "sample": "1"}),
     ("capture", {"sample": -0.5})],
)  # fmt: skip
def test_validate_names_a_bad_setting_and_off_repairs_it(store: LocalStore, name: str, raw: Any):
    # Given a setting the registry holds but cannot read (written by hand)
    blob = store.get(REGISTRY_KEY)
    assert blob is not None
    registry = json.loads(blob.data)
    registry["models"][SMH][name] = raw
    store.put(REGISTRY_KEY, json.dumps(registry).encode(), if_match=blob.etag)
    # When the model is validated, Then it fails naming the setting and the repair
    checked = ts(store, "validate", SMH)
    assert checked.exit_code == 1
    assert f"{SMH}: {name} setting is invalid" in checked.stderr
    assert f"`tickerserve {name} {SMH} --off` repairs it" in checked.stderr
    # And other commands still work on the registry, keeping the value as found
    assert ts(store, "promote", SMH, "1.0.1", "--alias", "staging").exit_code == 0
    assert json.loads(store.get(REGISTRY_KEY).data)["models"][SMH][name] == raw  # type: ignore[union-attr]
    # When the setting is turned off, Then the registry is whole again
    repaired = ts(store, name, SMH, "--off")
    assert repaired.exit_code == 0, repaired.stderr
    assert entry(store).invalid == {}
    assert ts(store, "validate", SMH).exit_code == 0
