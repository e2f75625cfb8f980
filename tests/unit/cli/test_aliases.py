"""``route``, ``fallback``, ``promote`` and ``rollback``: alias and route moves, each verified
first and recorded with the digest of the stored bytes; refusals change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_support import cli, cli_json, refused, registry_of, ts
from tests.seed_support import seed_folder, seed_models
from tickerserve.layout import artifact_key, metadata_key
from tickerserve.publishing.release import with_identity
from tickerserve.storage.bundle import read_bundle
from tickerserve.storage.store import LocalStore, sha256_hex


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
    before = registry_of(two_versions).revision
    # Then promoting it, or a version that does not exist, is refused and nothing moves
    refused(
        ts(two_versions, "promote", "etfs/SMH", "1.0.1"),
        "refusing etfs/SMH 1.0.1: etfs/SMH 1.0.1: artifact model.txt fails sha256 verification",
    )
    refused(
        ts(two_versions, "promote", "etfs/SMH", "2.0.0"),
        "refusing etfs/SMH 2.0.0: etfs/SMH 2.0.0 does not exist",
    )
    assert registry_of(two_versions).revision == before


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
    before = registry_of(two_versions)
    version = "1.0.1" if args else "1.0.1\n"
    # When promoting with it, Then it is refused and the registry keeps its names
    refused(ts(two_versions, "promote", "etfs/SMH", version, *args), message)
    after = registry_of(two_versions)
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
    assert registry_of(two_versions).models["etfs/SMH"].aliases["production"].version == "1.0.1"


def test_route_and_remove(two_versions):
    out = cli_json("--store", two_versions, "route", "soxx", "smh", "--model", "etfs/SMH")
    routed = {
        "model": "etfs/SMH",
        "asset_class": "etf",
        "signal": "strategy",
        "default_signal": "strategy",
    }
    assert out["routed"] == {"SOXX": routed, "SMH": routed}
    removed = ts(two_versions, "route", "--remove", "SOXX")
    assert removed.stdout == "removed SOXX (registry revision 5)\n"
    assert set(registry_of(two_versions).tickers) == {"SMH"}


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
    before = registry_of(two_versions)
    refused(ts(two_versions, *args), message)
    assert registry_of(two_versions) == before


def test_fallback_set_and_remove(two_versions):
    assert ts(two_versions, "fallback", "etf", "--model", "etfs/SMH").stdout == (
        "fallback etf -> etfs/SMH (registry revision 4)\n"
    )
    assert registry_of(two_versions).fallbacks == {"etf": "etfs/SMH"}
    assert ts(two_versions, "fallback", "etf", "--none").exit_code == 0
    assert registry_of(two_versions).fallbacks == {}


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
    target = registry_of(two_versions).models["etfs/SMH"].aliases["production"]
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
    target = registry_of(two_versions).models["etfs/SMH"].aliases["production"]
    assert (target.version, target.metadata_sha256) == ("2.0.0", sha256_hex(compact))
    assert ts(two_versions, "validate", "etfs/SMH@production").exit_code == 0


# -- signals: several models per ticker ----------------------------------------------------
@pytest.fixture
def spy_models(tmp_path: Path) -> str:
    """etfs/SPY (production) and etfs/SPY/volatility (production) published, nothing routed."""
    m = seed_models()
    folder = seed_folder(tmp_path / "seed/spy", m.smh, m.smh_encoder)
    store = str(tmp_path / "store")
    for model in ("etfs/SPY", "etfs/SPY/volatility"):
        published = cli(
            "--store", store, "publish", str(folder), "--model", model, "-a", "production"
        )
        assert published.exit_code == 0, published.stderr
    return store


def test_a_ticker_routes_one_model_per_signal(spy_models):
    # Given SPY routed to its strategy model
    assert ts(spy_models, "route", "SPY", "--model", "etfs/SPY").exit_code == 0
    # When its volatility model is routed on the volatility signal
    result = ts(
        spy_models, "route", "SPY", "--model", "etfs/SPY/volatility", "--signal", "volatility"
    )
    # Then both routes stand; the default (what requests naming no signal get) is unchanged
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ("SPY volatility -> etfs/SPY/volatility (etf) (registry revision 4)\n")
    assert result.stderr == (
        "note: SPY answers strategy when a request names no signal; requests for this model "
        'send "signal": "volatility" (or --default-signal)\n'
    )
    registry = registry_of(spy_models)
    assert registry.route("SPY").model == "etfs/SPY"
    assert registry.route("SPY", signal="volatility").model == "etfs/SPY/volatility"
    # When the default moves to volatility, Then requests naming none get that model
    moved = ts(
        spy_models, "route", "SPY", "--model", "etfs/SPY/volatility", "-s", "volatility",
        "--default-signal",
    )  # fmt: skip
    assert (moved.exit_code, moved.stderr) == (0, "")
    registry = registry_of(spy_models)
    assert registry.route("SPY").model == "etfs/SPY/volatility"
    # And removing one signal keeps the other
    removed = ts(spy_models, "route", "--remove", "SPY", "--signal", "strategy")
    assert removed.stdout == "removed SPY strategy (registry revision 6)\n"
    registry = registry_of(spy_models)
    assert registry.signals_of("SPY") == ["volatility"]


def test_route_refuses_what_it_cannot_do(spy_models):
    ts(spy_models, "route", "SPY", "--model", "etfs/SPY")
    for args, message in [
        (["--remove", "SPY", "--signal", "volatility"], "not routed on signal volatility: SPY"),
        (["SPY", "--model", "etfs/SPY", "--default-signal"], "--default-signal needs --signal"),
        (
            ["SPY", "--model", "etfs/SPY", "--signal", "Vol"],
            "invalid signal 'Vol': a lower-case word: letters, digits and _, e.g. strategy, "
            "volatility, direction",
        ),
    ]:
        result = ts(spy_models, "route", *args)
        assert result.exit_code == 2
        assert message in result.stderr
    assert registry_of(spy_models).revision == 3
