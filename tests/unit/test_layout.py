"""Names, tickers, versions and keys: everything path-like is refused before any I/O."""

from __future__ import annotations

import pytest

from tickerserve.layout import (
    CAPTURE_KIND,
    CAPTURE_VERSION,
    MONITORING_HISTORY_KEY,
    OUTCOMES_PREFIX,
    Version,
    artifact_key,
    canonical_model_name,
    capture_key,
    etf_model_name,
    history_archive_prefix,
    next_version,
    normalize_ticker,
    parse_version_key,
    partition_prefix,
    validate_alias,
    validate_artifact_name,
    validate_key,
    validate_model_name,
    validate_timeframe,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("smh", "SMH"), ("BRK.B", "BRK.B"), ("^GSPC", "^GSPC"), ("ES=F", "ES=F"), ("BF-B", "BF-B")],
)
def test_valid_tickers_are_upper_cased(raw, expected):
    assert normalize_ticker(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        *["", ".", "..", "../SMH", "SMH/..", "S M H", "A" * 16, "SMH\x00", ".HIDDEN", "é", None, 5],
        # Full match only: no trailing newline, no blanks; ASCII only, even where Unicode
        # upper-cases to ASCII (long s upper-cases to S, the ff ligature to FF).
        *["SMH\n", " SMH", "SMH ", "\u017fmh", "\ufb00", "\uff33\uff2d\uff28"],
    ],
)
def test_path_like_or_malformed_tickers_are_rejected(raw):
    with pytest.raises(ValueError, match="ticker"):
        normalize_ticker(raw)


@pytest.mark.parametrize("name", ["etfs/SMH", "stocks/universal", "crypto/btc-v2", "x"])
def test_valid_model_names(name):
    assert validate_model_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        *["", "/etfs/SMH", "etfs//SMH", "etfs/../x", "metadata/x", "etfs/versions", "a/b/c/d/e"],
        *["etfs/SMH\n", "etfs/\u017fmh", "etfs/SMH/"],
    ],
)
def test_invalid_model_names(name):
    with pytest.raises(ValueError, match="model name"):
        validate_model_name(name)


def test_keys_follow_the_bucket_layout():
    assert etf_model_name("smh") == "etfs/SMH"
    key = artifact_key("etfs/SMH", "1.0.2", "model.txt")
    assert key == "etfs/SMH/versions/1.0.2/model.txt"
    assert parse_version_key(key) == ("etfs/SMH", "1.0.2", "model.txt")
    assert parse_version_key("metadata/asset_registry.json") is None
    with pytest.raises(ValueError, match="artifact"):
        artifact_key("etfs/SMH", "1.0.2", "../../registry.json")


def test_versions_order_numerically_and_bump():
    assert Version.parse("1.10.0") > Version.parse("1.9.9")
    assert next_version([]) == "1.0.0"
    assert next_version(["1.0.0", "1.2.9", "1.10.1"]) == "1.10.2"
    assert next_version(["1.0.3"], "minor") == "1.1.0"
    assert next_version(["1.4.3"], "major") == "2.0.0"


@pytest.mark.parametrize(
    "raw",
    ["1.0", "01.0.0", "1.0.0-rc1", "v1.0.0", "1.0.0 ", "1.0.0\n", "\u0661.0.0", "\uff11.0.0"],
)
def test_invalid_versions(raw):
    with pytest.raises(ValueError, match="version"):
        Version.parse(raw)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("etfs/smh", "etfs/SMH"),
        ("ETFS/Smh", "etfs/SMH"),
        (" etfs/SMH ", "etfs/SMH"),
        ("stocks/Universal", "stocks/universal"),
        ("STOCKS/aapl/H1", "stocks/AAPL/h1"),
        ("stocks/brk.b", "stocks/BRK.B"),
        ("crypto/btc-v2", "crypto/btc-v2"),  # not a class prefix: kept as typed
        ("team/Model/H1", "team/Model/H1"),
    ],
)
def test_model_names_have_one_spelling(typed, stored):
    assert canonical_model_name(typed) == stored


def test_a_model_name_is_ascii_before_its_spelling_is_changed():
    with pytest.raises(ValueError, match="invalid model name"):
        canonical_model_name("etfs/\u017fmh")  # would upper-case to etfs/SMH


@pytest.mark.parametrize("name", ["SMH", "smh", "universal"])
def test_a_model_name_without_a_group_folder_is_refused(name):
    with pytest.raises(ValueError, match="has no group folder"):
        canonical_model_name(name)


@pytest.mark.parametrize(
    ("check", "raw"),
    [
        (validate_alias, "staging\n"),
        (validate_alias, "\u017ftaging"),
        (validate_timeframe, "d1\n"),
        (validate_timeframe, "d\u0661"),
        (validate_artifact_name, "model.txt\n"),
        (validate_key, "metadata/asset_registry.json\n"),
    ],
)
def test_names_with_a_trailing_newline_or_unicode_are_refused(check, raw):
    with pytest.raises(ValueError, match="invalid"):
        check(raw)


def test_day_partitions_capture_and_history_archives_follow_the_layout():
    # the documented layout (DESIGN "Capture"), built from layout.json's names
    assert capture_key("2026-12-01", "part-0.jsonl.gz") == "capture/dt=2026-12-01/part-0.jsonl.gz"
    assert partition_prefix(OUTCOMES_PREFIX, "2026-12-01") == "outcomes/dt=2026-12-01/"
    assert partition_prefix(OUTCOMES_PREFIX) == "outcomes/dt="
    assert history_archive_prefix(MONITORING_HISTORY_KEY) == (
        "metadata/monitoring_history_archive_"
    )
    assert (CAPTURE_KIND, CAPTURE_VERSION) == ("capture", 1)
    with pytest.raises(ValueError, match="invalid object key"):
        capture_key("2026-12-01", "../escape")
