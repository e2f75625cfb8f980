"""``list``, ``best``, ``show`` and ``history``: what the store holds, read without loading a
model, as tables or JSON."""

from __future__ import annotations

from tests.cli_support import cli_json, refused, ts


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


def test_history_last(versions_store):
    records = cli_json("--store", versions_store, "history", "training", "--last", "1")
    assert [(r["model"], r["version"]) for r in records] == [("stocks/universal", "1.0.0")]
    assert ts(versions_store, "history", "monitoring").stdout == "no monitoring history\n"
