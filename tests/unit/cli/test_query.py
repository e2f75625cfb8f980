"""``list``, ``best``, ``show`` and ``history``: what the store holds, read without loading a
model, as tables or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_support import cli, cli_json, refused, ts
from tests.seed_layouts import write_seed_000, write_seed_004
from tickerserve.http.api import Api
from tickerserve.publishing.demo import FEATURES
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings


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
    refused(
        ts(versions_store, "show", "etfs/SMH@3.0.0"),
        f"etfs/SMH has no version 3.0.0 in {versions_store}; it has 1.0.0, 1.0.1",
    )


def test_show_text(versions_store):
    lines = ts(versions_store, "show", "etfs/SMH").stdout.splitlines()
    assert lines[0] == "etfs/SMH 1.0.0  [ok]"
    assert lines[1] == "aliases:   production   (model: production=1.0.0)"
    assert "features:  12 used of 12: rsi_14, iv_rank" in "\n".join(lines)


def test_history_last(versions_store):
    records = cli_json("--store", versions_store, "history", "training", "--last", "1")
    assert [(r["model"], r["version"]) for r in records] == [("stocks/universal", "1.0.0")]
    assert ts(versions_store, "history", "monitoring").stdout == "no monitoring history\n"


# -- imported seed trees: model ids, descriptions, families -------------------------------
@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Seed 004's registry.db (XGBClassifier 1.0.0, 1.0.1, 2.0.0) and seed 000's SMH imported."""
    root = tmp_path_factory.mktemp("seeds")
    store = str(root / "store")
    registry = write_seed_004(root)
    done = cli("--store", store, "import-seed", str(registry), "--map",
               "xgboost_tuned=stocks/universal", "--route", "AAPL")  # fmt: skip
    assert done.exit_code == 0, done.stdout + done.stderr
    assert cli("--store", store, "import-seed", str(write_seed_000(root))).exit_code == 0
    return store


def test_show_finds_a_seed_004_version_by_its_model_id_and_prints_its_description(imported):
    # When asked for registry.db's model_id 2 (xgboost_tuned 1.0.1)
    text = cli("--store", imported, "show", "--model-id", "2")
    # Then that version is shown with its model_id and description
    assert text.exit_code == 0, text.stderr
    assert text.stdout.splitlines()[0] == "stocks/universal 1.0.1  [ok]"
    assert "model_id:  2 (registry.db)" in text.stdout.splitlines()
    assert "description: Tuned XGBoost model" in text.stdout.splitlines()
    info = json.loads(cli("--store", imported, "show", "stocks/universal", "--model-id", "3",
                          "--json").stdout)  # fmt: skip
    assert (info["version"], info["model_id"], info["description"]) == (
        "2.0.0", 3, "Tuned XGBoost model",
    )  # fmt: skip
    # And a model_id nothing was imported from says so
    missing = cli("--store", imported, "show", "--model-id", "9")
    assert (missing.exit_code, missing.stderr) == (
        2, "error: no version was imported from a registry.db row with model_id 9\n",
    )  # fmt: skip


def test_a_missing_version_says_what_is_missing(imported, tmp_path: Path):
    shown = cli("--store", imported, "show", "stocks/universal@1.0.5")
    assert shown.stderr == (
        f"error: stocks/universal has no version 1.0.5 in {imported}; it has 1.0.0, 1.0.1, 2.0.0\n"
    )
    # And a request pinning it is told the same
    api = Api(ModelService(Settings(store_path=imported, cache_dir=str(tmp_path / "c"))))
    answer = api.handle(
        {"ticker": "AAPL", "version": "1.0.5", "features": [0.0] * len(FEATURES)}, None
    )
    assert answer["error"] == {
        "code": "unknown_version",
        "message": "model stocks/universal has no version 1.0.5: its versions are 1.0.0, "
        "1.0.1, 2.0.0 (a version folder written before the digest index counts only once "
        "`tickerserve migrate` records it)",
    }


@pytest.mark.parametrize(
    ("model_type", "found"),
    [
        ("lightgbm", {"etfs/SMH"}),  # an imported LGBMClassifier, by its family
        ("LGBMClassifier", {"etfs/SMH"}),
        ("xgboost", {"stocks/universal"}),
        ("XGBClassifier", {"stocks/universal"}),
        ("random_forest", set()),
    ],
)
def test_list_and_best_take_family_names_as_well_as_class_names(imported, model_type, found):
    listed = json.loads(
        cli("--store", imported, "list", "--model-type", model_type, "--json").stdout
    )
    assert {r["model"] for r in listed} == found
    best = cli("--store", imported, "best", "--metric", "f1", "--model-type", model_type)
    if found == {"stocks/universal"}:
        assert best.stdout.startswith("stocks/universal 2.0.0 [production]: f1=0.77")
