"""Model names as people type them: any letter case is one model, and a bare ticker is refused
with the model that serves it as a hint."""

from __future__ import annotations

from tests.cli_support import cli_json, refused, ts
from tickerserve.storage.store import LocalStore


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
