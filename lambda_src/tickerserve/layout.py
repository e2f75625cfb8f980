"""Bucket layout: every key the publisher writes and the runtime reads is built here.

```
metadata/asset_registry.json                 the registry
metadata/asset_registry.seed-000.json        seed 000's own registry, kept by import-seed
metadata/training_history.jsonl              one JSON record per publish
metadata/monitoring_history.jsonl            one JSON record per monitoring run
metadata/monitor_salt.json                   the monitor's secret salt for request-id keys
capture/dt=YYYY-MM-DD/*.jsonl.gz             captured predictions (``tickerserve serve``)
outcomes/dt=YYYY-MM-DD/*.jsonl               realized outcomes, by the date received
etfs/{TICKER}/versions/{VERSION}/...         one model per ETF
etfs/{TICKER}/versions/index.json            the model's digest index (version_index.py)
etfs/{TICKER}/versions/{VERSION}.ranges.json feature ranges of a version published before
                                             its baseline (baselines/ranges.py)
stocks/universal/versions/{VERSION}/...      the shared stock model
{model name}/versions/{VERSION}/...          any other model
{model name}/baselines/{VERSION}.json        a monitoring baseline added after publishing
```

The names the CDK app needs too (the registry and history keys, the capture and outcome
prefixes, the day partition, the capture record's kind and version) are read from
``layout.json`` beside this file, which ``infra/runtime_contract.py`` reads as well (infra
never imports this package); the rest are defined here. Nothing else spells a key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tickerserve.contract import MODEL_NAME, NAMES

PATH = Path(__file__).with_name("layout.json")
RAW: dict[str, Any] = json.loads(PATH.read_text())

DEFAULT_REGISTRY_KEY: str = RAW["registry_key"]
METADATA_PREFIX: str = RAW["metadata_prefix"]
TRAINING_HISTORY_KEY: str = RAW["training_history_key"]
MONITORING_HISTORY_KEY: str = RAW["monitoring_history_key"]
# Where ``import-seed`` keeps seed 000's own registry when it converts a store in place.
SEED_000_REGISTRY_KEY = f"{METADATA_PREFIX}asset_registry.seed-000.json"
# The monitor's secret salt for request-id keys (written once, create-only).
MONITOR_SALT_KEY: str = RAW["monitor_salt_key"]
# A rotated history: ``{key without .jsonl}{infix}{UTC time}_{id}.jsonl`` beside it.
HISTORY_ARCHIVE_INFIX: str = RAW["history_archive_infix"]
VERSIONS_DIR: str = RAW["versions_dir"]
BASELINES_DIR: str = RAW["baselines_dir"]
METADATA_FILE = "metadata.json"
# A version's monitoring baseline, published with it (an artifact) or attached later (a
# sidecar); the prediction function never downloads it.
BASELINE_FILE = "baseline.json"
# Beside the version folders, where the function may read and no version key can be: a
# version folder is named by a semantic version, never "index.json".
INDEX_FILE = "index.json"
# A version's feature ranges kept beside its folder (when its metadata.json has none): the name
# its sha256 is recorded under in the digest index. The prediction function reads it.
RANGES_FILE = "ranges.json"
MODEL_FILE = "model.txt"
ETF_PREFIX = "etfs"
STOCK_PREFIX = "stocks"
# Written by serving (capture) and by clients (outcomes), never by publishing: sync keeps out.
CAPTURE_PREFIX: str = RAW["capture"]["prefix"]
OUTCOMES_PREFIX: str = RAW["outcomes_prefix"]
# Both are partitioned by UTC day: ``{prefix}{PARTITION_KEY}=YYYY-MM-DD/``.
PARTITION_KEY: str = RAW["partition_key"]
# What marks a capture record (``{"kind": "capture", "v": 1, ...}``): the writer stamps it, the
# monitor reads only records that carry it, the capture pipeline's log filter matches it.
CAPTURE_KIND: str = RAW["capture"]["record_kind"]
CAPTURE_VERSION: int = RAW["capture"]["record_version"]
UNIVERSAL_STOCK_MODEL = "stocks/universal"

ASSET_CLASSES = ("etf", "stock")

# Name rules come from contract.json (shared with the OpenAPI document and infra). Every name
# is checked with ``fullmatch`` (a ``$`` would accept a trailing newline) against ASCII-only
# classes (``\d`` would take any Unicode digit).
_TICKER = NAMES["ticker"]
_ALIAS = NAMES["alias"]
_VERSION = NAMES["version"]
_TIMEFRAME = NAMES["timeframe"]
_SIGNAL = NAMES["signal"]
_OBJECT_KEY = NAMES["object_key"]
_ARTIFACT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def normalize_ticker(raw: object) -> str:
    """Validate and upper-case a ticker; raise ``ValueError`` for anything else."""
    if not isinstance(raw, str):
        raise ValueError("ticker must be a string")
    # Checked before upper-casing: a long s (U+017F) upper-cases to S; only ASCII is a ticker.
    return _TICKER.check(raw).upper()


def validate_model_name(name: str) -> str:
    """A model name is 1-4 path segments (``etfs/SMH``), never path-like or reserved."""
    return MODEL_NAME.check(name)


def canonical_model_name(name: str) -> str:
    """A model name as a person may type it, in its one stored spelling: ``etfs``/``stocks``
    in lower case, the ticker after them in upper case and a timeframe after that in lower
    case (``ETFS/smh`` -> ``etfs/SMH``, ``stocks/aapl/H1`` -> ``stocks/AAPL/h1``, and
    ``stocks/universal`` stays). Other names are kept as given. ``ValueError`` for a name
    without a group folder (a bare ``SMH``) or an invalid one."""
    if not isinstance(name, str):
        raise ValueError("model name must be a string")
    segments = name.strip().split("/")
    if len(segments) == 1:
        raise ValueError(
            f"model name {name.strip()[:40]!r} has no group folder: models are named like "
            f"{ETF_PREFIX}/SMH, {UNIVERSAL_STOCK_MODEL} or team/model"
        )
    # Checked before any case change: a long s (U+017F) would upper-case to an ASCII S.
    validate_model_name("/".join(segments))
    head = segments[0].lower()
    if head in (ETF_PREFIX, STOCK_PREFIX):
        ticker = segments[1]
        universal = f"{head}/{ticker.lower()}" == UNIVERSAL_STOCK_MODEL
        segments[:2] = [head, ticker.lower() if universal else ticker.upper()]
        segments[2:] = [
            part.lower() if _TIMEFRAME.pattern.fullmatch(part.lower()) else part
            for part in segments[2:]
        ]
    return validate_model_name("/".join(segments))


def validate_alias(alias: str) -> str:
    """Aliases are short lower-case names such as ``production`` or ``staging``."""
    return _ALIAS.check(alias)


def validate_timeframe(timeframe: str) -> str:
    """A timeframe: ``m``, ``h``, ``d`` or ``w`` followed by one to three digits (``d1``)."""
    return _TIMEFRAME.check(timeframe)


def validate_signal(signal: str) -> str:
    """A signal: what a model predicts for a ticker, a lower-case word (``volatility``)."""
    return _SIGNAL.check(signal)


def validate_artifact_name(name: str) -> str:
    """Artifact file names are flat (no folders) so a bundle can never escape its version folder."""
    if not isinstance(name, str) or not _ARTIFACT_RE.fullmatch(name) or ".." in name:
        raise ValueError(f"invalid artifact name {str(name)[:60]!r}")
    return name


def validate_key(key: str) -> str:
    """An object key we are willing to read or write: relative, no '..', no empty segments."""
    return _OBJECT_KEY.check(key)


def partition_prefix(prefix: str, day: str = "") -> str:
    """``{prefix}dt={day}/`` (``capture/dt=2026-12-01/``); without a day, the part every
    partition of ``prefix`` starts with (``capture/dt=``)."""
    return f"{prefix}{PARTITION_KEY}={day}/" if day else f"{prefix}{PARTITION_KEY}="


def capture_key(day: str, name: str) -> str:
    """``capture/dt=YYYY-MM-DD/{name}``: the day is the records' own (UTC) date."""
    return validate_key(f"{partition_prefix(CAPTURE_PREFIX, day)}{name}")


def history_archive_prefix(key: str) -> str:
    """What every rotated archive of the history ``key`` starts with
    (``metadata/monitoring_history_archive_``)."""
    return f"{key.removesuffix('.jsonl')}{HISTORY_ARCHIVE_INFIX}"


def etf_model_name(ticker: str) -> str:
    return f"{ETF_PREFIX}/{normalize_ticker(ticker)}"


def model_prefix(model: str) -> str:
    return f"{validate_model_name(model)}/"


def versions_prefix(model: str) -> str:
    return f"{validate_model_name(model)}/{VERSIONS_DIR}/"


def version_prefix(model: str, version: str) -> str:
    return f"{versions_prefix(model)}{Version.parse(version)}/"


def artifact_key(model: str, version: str, artifact: str) -> str:
    return f"{version_prefix(model, version)}{validate_artifact_name(artifact)}"


def metadata_key(model: str, version: str) -> str:
    return artifact_key(model, version, METADATA_FILE)


def baseline_sidecar_key(model: str, version: str) -> str:
    """A baseline attached to an existing (immutable) version: beside its folder."""
    return f"{model_prefix(model)}{BASELINES_DIR}/{Version.parse(version)}.json"


def ranges_sidecar_key(model: str, version: str) -> str:
    """A version's feature ranges, beside its folder and under ``*/versions/*`` (where the
    function may read): ``{model}/versions/{version}.ranges.json``, which no version key can
    be mistaken for (a version folder's key has one more segment)."""
    return f"{versions_prefix(model)}{Version.parse(version)}.{RANGES_FILE}"


def index_key(model: str) -> str:
    """The digest index of ``model``: ``{model}/versions/index.json``."""
    return f"{versions_prefix(model)}{INDEX_FILE}"


def parse_index_key(key: str) -> str | None:
    """The model whose digest index ``key`` is, or None for any other key."""
    model, sep, rest = key.rpartition(f"/{VERSIONS_DIR}/")
    if not sep or rest != INDEX_FILE:
        return None
    try:
        return validate_model_name(model)
    except ValueError:
        return None


def parse_version_key(key: str) -> tuple[str, str, str] | None:
    """Split ``{model}/versions/{version}/{file}`` into its parts, or None for other keys."""
    parts = key.split("/")
    if len(parts) < 4 or parts[-3] != VERSIONS_DIR:
        return None
    model = "/".join(parts[:-3])
    try:
        validate_model_name(model)
        Version.parse(parts[-2])
    except ValueError:
        return None
    return model, parts[-2], parts[-1]


Bump = Literal["major", "minor", "patch"]


@dataclass(frozen=True, order=True)
class Version:
    """A semantic version ``MAJOR.MINOR.PATCH`` (no pre-release tags)."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, raw: str) -> Version:
        if not isinstance(raw, str):
            raise ValueError("version must be a string like 1.0.0")
        match = _VERSION.pattern.fullmatch(_VERSION.check(raw))
        assert match is not None  # check() just matched it
        return cls(int(match[1]), int(match[2]), int(match[3]))

    def bump(self, part: Bump) -> Version:
        if part == "major":
            return Version(self.major + 1, 0, 0)
        if part == "minor":
            return Version(self.major, self.minor + 1, 0)
        return Version(self.major, self.minor, self.patch + 1)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def next_version(existing: list[str], bump: Bump = "patch") -> str:
    """The version after the highest existing one (``1.0.0`` for a new model)."""
    if not existing:
        return "1.0.0"
    return str(max(Version.parse(v) for v in existing).bump(bump))
