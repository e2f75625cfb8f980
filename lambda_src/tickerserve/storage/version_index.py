"""The per-model digest index: the metadata sha256 of every version ever published.

One small JSON object per model, beside its version folders (``{model}/versions/index.json``,
which the prediction function may already read and which no version key can be mistaken for):

```json
{"schema": 1, "model": "etfs/SMH",
 "versions": {"1.0.0": {"metadata_sha256": "…", "recorded_at": "…",
                        "sidecars": {"baseline.json": "…"}},
              "1.0.1": {"metadata_sha256": "…", "recorded_at": "…", "deleted_at": "…"}}}
```

The registry records the digest of what its aliases point at; this index records it for every
version, so a client that pins a version no alias names is served only bytes whose digest was
recorded when they were published (registry -> index -> ``metadata.json`` -> artifacts),
without reading the whole history and without growing the registry. A sidecar written beside
a version later (a monitoring baseline) has its digest recorded here too, under a name.

Entries are written once: a version's metadata digest never changes, a deleted version keeps
its entry (``deleted_at``), so its number is never handed out again. Every write is a
compare-and-swap (``tickerserve.storage.compare_and_swap``). Readers accept schema 1 and keep
unknown fields.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tickerserve.errors import Conflict, InvalidModel, NotFound
from tickerserve.layout import Version, index_key, validate_artifact_name, validate_model_name
from tickerserve.storage.compare_and_swap import compare_and_swap
from tickerserve.storage.store import KeyNotFound, Store

SCHEMA = 1
_SHA_RE = re.compile(r"[0-9a-f]{64}")
_ENTRY_KEYS = frozenset({"metadata_sha256", "recorded_at", "sidecars", "deleted_at"})
_TOP_KEYS = frozenset({"schema", "model", "versions"})


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_sha256(value: object, what: str) -> str:
    if not isinstance(value, str) or not _SHA_RE.fullmatch(value):
        raise ValueError(f"{what} must be 64 lower-case hex characters")
    return value


@dataclass(frozen=True)
class IndexEntry:
    """What is recorded about one version."""

    metadata_sha256: str | None  # None only for a deleted version whose digest was never known
    recorded_at: str
    sidecars: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    deleted_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.extra, "metadata_sha256": self.metadata_sha256}
        out["recorded_at"] = self.recorded_at
        if self.sidecars:
            out["sidecars"] = dict(sorted(self.sidecars.items()))
        if self.deleted_at is not None:
            out["deleted_at"] = self.deleted_at
        return out


@dataclass
class VersionIndex:
    """The parsed index of one model (empty when nothing was recorded yet)."""

    model: str
    versions: dict[str, IndexEntry] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def digest(self, version: str) -> str | None:
        """The recorded metadata sha256 of a version that exists (not deleted), else None."""
        entry = self.versions.get(version)
        if entry is None or entry.deleted_at is not None:
            return None
        return entry.metadata_sha256

    def is_deleted(self, version: str) -> bool:
        entry = self.versions.get(version)
        return entry is not None and entry.deleted_at is not None

    # -- writing (applied inside update_index) -------------------------------------------
    def record(self, version: str, metadata_sha256: str) -> bool:
        """Record a version's digest; False if it was recorded already (same digest).
        ``Conflict`` for another digest or a deleted version: entries never change."""
        version = str(Version.parse(version))
        check_sha256(metadata_sha256, "metadata_sha256")
        entry = self.versions.get(version)
        if entry is None:
            self.versions[version] = IndexEntry(metadata_sha256, _now())
            return True
        if entry.deleted_at is not None:
            raise Conflict(
                f"{self.model} {version} was deleted ({entry.deleted_at}); "
                "version numbers are never reused",
                code="version_deleted",
            )
        if entry.metadata_sha256 != metadata_sha256:
            raise Conflict(
                f"{self.model} {version}: the index records metadata sha256 "
                f"{(entry.metadata_sha256 or '')[:12]}…, not {metadata_sha256[:12]}…",
                code="digest_mismatch",
            )
        return False

    def record_sidecar(self, version: str, name: str, sha256: str, *, replace: bool) -> None:
        """Record the digest of a file kept beside a version (``baseline.json``)."""
        version = str(Version.parse(version))
        validate_artifact_name(name)
        check_sha256(sha256, f"sha256 of {name}")
        entry = self.versions.get(version)
        if entry is None or entry.deleted_at is not None:
            raise NotFound(
                f"{self.model} {version} is not a recorded version", code="unknown_version"
            )
        old = entry.sidecars.get(name)
        if old is not None and old != sha256 and not replace:
            raise Conflict(
                f"{self.model} {version} already records {name} with sha256 {old[:12]}…",
                code="digest_mismatch",
            )
        sidecars = {**entry.sidecars, name: sha256}
        self.versions[version] = IndexEntry(
            entry.metadata_sha256, entry.recorded_at, sidecars, entry.deleted_at, entry.extra
        )

    def mark_deleted(self, version: str, metadata_sha256: str | None) -> None:
        """Keep the entry (its number stays taken) with ``deleted_at``."""
        version = str(Version.parse(version))
        entry = self.versions.get(version)
        if entry is not None and entry.deleted_at is not None:
            return
        digest = entry.metadata_sha256 if entry is not None else metadata_sha256
        recorded = entry.recorded_at if entry is not None else _now()
        sidecars = entry.sidecars if entry is not None else {}
        extra = entry.extra if entry is not None else {}
        self.versions[version] = IndexEntry(digest, recorded, sidecars, _now(), extra)

    # -- serialisation -------------------------------------------------------------------
    def to_json(self) -> bytes:
        versions = sorted(self.versions.items(), key=lambda item: Version.parse(item[0]))
        data = {
            **self.extra,
            "schema": SCHEMA,
            "model": self.model,
            "versions": {v: e.to_dict() for v, e in versions},
        }
        return json.dumps(data, indent=1).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, model: str) -> VersionIndex:
        """Parse and validate; ``InvalidModel`` names what is wrong."""
        try:
            raw = json.loads(data)
            if not isinstance(raw, dict):
                raise TypeError("top level must be an object")
            schema = raw.get("schema")
            if schema != SCHEMA:
                raise ValueError(
                    f"unsupported schema {schema!r}: this tickerserve reads schema {SCHEMA}"
                    "; a newer one wrote it: upgrade (deploy the function first)"
                )
            if raw.get("model") != model:
                raise ValueError(f"it describes {raw.get('model')!r}, not {model!r}")
            versions = raw.get("versions", {})
            if not isinstance(versions, dict):
                raise TypeError("versions must be an object")
            return cls(
                validate_model_name(model),
                {str(Version.parse(v)): _entry(v, e) for v, e in versions.items()},
                {k: v for k, v in raw.items() if k not in _TOP_KEYS},
            )
        except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
            raise InvalidModel(f"digest index of {model} is invalid: {exc}") from None


def _entry(version: str, raw: Any) -> IndexEntry:
    if not isinstance(raw, dict):
        raise TypeError(f"{version} must be an object")
    deleted_at = raw.get("deleted_at")
    digest = raw.get("metadata_sha256")
    if digest is not None or deleted_at is None:
        check_sha256(digest, f"{version} metadata_sha256")
    sidecars = raw.get("sidecars", {})
    if not isinstance(sidecars, dict):
        raise TypeError(f"{version} sidecars must be an object")
    return IndexEntry(
        digest,
        str(raw.get("recorded_at", "")),
        {
            validate_artifact_name(n): check_sha256(s, f"{version} sidecar {n}")
            for n, s in sidecars.items()
        },
        None if deleted_at is None else str(deleted_at),
        {k: v for k, v in raw.items() if k not in _ENTRY_KEYS},
    )


@dataclass(frozen=True)
class IndexSnapshot:
    index: VersionIndex
    etag: str | None  # None: no index object yet


def read_index(store: Store, model: str) -> IndexSnapshot:
    """A model's index (empty when none was written yet) with its ETag."""
    try:
        blob = store.get(index_key(model))
    except KeyNotFound:
        return IndexSnapshot(VersionIndex(validate_model_name(model)), None)
    assert blob is not None  # an unconditional GET always returns content
    return IndexSnapshot(VersionIndex.from_json(blob.data, model), blob.etag)


def update_index(
    store: Store, model: str, mutate: Callable[[VersionIndex], object]
) -> VersionIndex:
    """Apply ``mutate`` with compare-and-swap (``mutate`` may raise: nothing is written)."""

    def change(current: bytes | None) -> tuple[bytes, VersionIndex]:
        index = VersionIndex(model) if current is None else VersionIndex.from_json(current, model)
        index = copy.deepcopy(index)
        mutate(index)
        return index.to_json(), index

    return compare_and_swap(store, index_key(validate_model_name(model)), change)


def record_versions(store: Store, model: str, digests: dict[str, str]) -> VersionIndex:
    """Record ``version -> metadata sha256`` for versions just written (idempotent)."""

    def mutate(index: VersionIndex) -> None:
        for version, digest in digests.items():
            index.record(version, digest)

    return update_index(store, model, mutate)


def record_sidecar(
    store: Store, model: str, version: str, name: str, sha256: str, *, replace: bool = False
) -> VersionIndex:
    """Record the sha256 of a sidecar file kept beside ``model`` ``version`` (e.g. a baseline
    written after the version was published). ``NotFound`` if the version is not recorded (or
    deleted); ``Conflict`` if another digest is recorded under ``name`` and not ``replace``."""
    return update_index(
        store, model, lambda index: index.record_sidecar(version, name, sha256, replace=replace)
    )
