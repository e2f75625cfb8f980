"""A version's content digest: what decides its answers (artifacts, features, classes, task,
how members combine), not when or from where it was published. Two versions with the same
digest answer every request alike, so a re-import of the same seed model publishes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tickerserve.errors import TickerserveError
from tickerserve.publishing.version_folders import versions_of
from tickerserve.storage.bundle import MONITOR_ARTIFACTS, BundleMetadata, read_metadata
from tickerserve.storage.store import Store, sha256_hex


def content_digest(meta: BundleMetadata) -> str:
    """sha256 over everything that decides a version's answers, in a canonical form."""
    members = [m.to_dict() for m in meta.members]
    ensemble: dict[str, Any] = {"method": meta.method, "members": members}
    if meta.stacking is not None:
        ensemble["stacking"] = {
            "coefficients": meta.stacking.coefficients,
            "intercept": meta.stacking.intercept,
            "link": meta.stacking.link,
        }
    content = {
        "task": meta.task,
        "feature_names": meta.feature_names,
        "selected_features": meta.selected_features,
        "classes": meta.classes,
        "accepts_missing": meta.accepts_missing,
        "ensemble": ensemble,
        # The monitoring baseline does not decide an answer (and is refitted at will).
        "artifacts": {
            n: a.sha256 for n, a in sorted(meta.artifacts.items()) if n not in MONITOR_ARTIFACTS
        },
    }
    return sha256_hex(json.dumps(content, sort_keys=True, separators=(",", ":")).encode())


@dataclass(frozen=True)
class StoredVersion:
    """A complete version already in the store, with the digests that identify it."""

    version: str
    metadata_sha256: str
    content: str


def stored_versions(store: Store, model: str) -> tuple[list[str], list[StoredVersion]]:
    """Every version folder of ``model`` (complete or not: their numbers are taken) and the
    complete, readable ones with their digests. Unreadable metadata counts as no content."""
    taken: list[str] = []
    readable: list[StoredVersion] = []
    for folder in versions_of(store, model):
        taken.append(folder.version)
        if not folder.complete:
            continue
        try:
            meta, digest = read_metadata(store, model, folder.version)
        except TickerserveError:
            continue
        readable.append(StoredVersion(folder.version, digest, content_digest(meta)))
    return taken, readable
