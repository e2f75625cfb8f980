"""What ``make serve``'s moto bucket holds, kept in a folder across restarts.

moto keeps its buckets in memory. ``make serve`` saves the bucket into a folder while it runs
(every few seconds) and when it stops, and puts it back into a fresh moto server when it
starts, so published and imported models, captured rows, outcomes and monitoring history
survive a restart.

The folder::

    manifest.json          {"format", "bucket", "saved_at", "objects": {key: {sha256, size,
                           etag, content_type, metadata}}}: what the bucket held
    objects/ab/ab12...     each object's bytes, named by their sha256 (written once)

Crash safety: an object's bytes are written to a temporary name, flushed and renamed; the
manifest likewise, as the last step of a save, with one atomic rename. A save interrupted at
any point leaves the previous manifest, whose files are all still there (files no manifest
names are removed only after the new one is in place). Saves are incremental: the listing's
ETag and size tell which objects changed since the last save; only those are downloaded.

Why not moto's request recorder (``MOTO_ENABLE_RECORDING``): it appends every request, GETs
included, so a server that re-reads its registry and flushes capture every 5 s records about
25 requests a minute forever, and a start replays all of them one by one; a line cut short by
a crash makes the replay fail; concurrent requests append to the file from several threads.
A snapshot is as large as the bucket, not as its history.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tickerserve.cli.errors import Failed

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FORMAT = 1
MANIFEST = "manifest.json"
OBJECTS = "objects"
JOBS = 8
_TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class Entry:
    """One object as saved."""

    sha256: str
    size: int
    etag: str
    content_type: str
    metadata: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "size": self.size,
            "etag": self.etag,
            "content_type": self.content_type,
            "metadata": self.metadata,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        return cls(
            sha256=str(data["sha256"]),
            size=int(data["size"]),
            etag=str(data["etag"]),
            content_type=str(data.get("content_type") or "application/octet-stream"),
            metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
        )


@dataclass(frozen=True)
class Saved:
    """What a save or a restore did."""

    objects: int  # objects in the snapshot
    bytes: int  # their total size
    transferred: int  # objects downloaded (save) or uploaded (restore) this time
    saved_at: str | None = None  # when the restored snapshot was taken
    unreadable: tuple[str, ...] = ()  # keys whose saved bytes were missing or damaged


class SnapshotError(Failed):
    """The folder holds something that is not a snapshot this code can read."""


class BucketSnapshot:
    """A bucket's objects in ``folder``; ``save`` and ``restore`` with a boto3 S3 client."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()  # one save at a time (the periodic one, the last one)

    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def entries(self) -> dict[str, Entry]:
        """The objects of the last complete save ({} when there is none)."""
        try:
            data = json.loads(self.manifest_path.read_bytes())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise SnapshotError(f"{self.manifest_path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SnapshotError(f"{self.manifest_path}: not a snapshot of format {FORMAT}")
        return {key: Entry.from_json(value) for key, value in data["objects"].items()}

    def saved_at(self) -> str | None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            return str(json.loads(self.manifest_path.read_bytes()).get("saved_at"))
        return None

    # -- saving ----------------------------------------------------------------------------
    def save(self, client: S3Client, bucket: str) -> Saved:
        """Mirror the bucket into the folder (only what changed since the last save)."""
        with self._lock:
            previous = self.entries()
            listed = _list(client, bucket)
            kept = {
                key: entry
                for key, (etag, size) in listed.items()
                if (entry := previous.get(key)) is not None
                and (entry.etag, entry.size) == (etag, size)
            }
            changed = [key for key in listed if key not in kept]
            with ThreadPoolExecutor(max_workers=JOBS) as pool:
                downloads = pool.map(lambda k: self._download(client, bucket, k), changed)
                fetched = dict(zip(changed, downloads, strict=True))
            entries = {**kept, **{k: e for k, e in fetched.items() if e is not None}}
            if entries != previous or not self.exists():
                self._write_manifest(bucket, entries)
                self._remove_unreferenced(entries)
            return Saved(len(entries), sum(e.size for e in entries.values()), len(fetched))

    def _download(self, client: S3Client, bucket: str, key: str) -> Entry | None:
        try:
            response = client.get_object(Bucket=bucket, Key=key)
        except client.exceptions.NoSuchKey:
            return None  # deleted since the listing
        data = response["Body"].read()
        digest = hashlib.sha256(data).hexdigest()
        self._write_blob(digest, data)
        return Entry(
            sha256=digest,
            size=len(data),
            etag=str(response["ETag"]),
            content_type=str(response.get("ContentType") or "application/octet-stream"),
            metadata=dict(response.get("Metadata") or {}),
        )

    def _blob(self, digest: str) -> Path:
        return self.folder / OBJECTS / digest[:2] / digest

    def _write_blob(self, digest: str, data: bytes) -> None:
        path = self._blob(digest)
        if path.is_file() and path.stat().st_size == len(data):
            return  # content-addressed: the same name always holds the same bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        _durable_write(path, data)

    def _write_manifest(self, bucket: str, entries: dict[str, Entry]) -> None:
        document = {
            "format": FORMAT,
            "bucket": bucket,
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "objects": {key: entries[key].to_json() for key in sorted(entries)},
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        _durable_write(self.manifest_path, json.dumps(document, indent=1).encode())

    def _remove_unreferenced(self, entries: dict[str, Entry]) -> None:
        """Files no manifest names: replaced objects' bytes, temporaries of a cut-off save."""
        wanted = {entry.sha256 for entry in entries.values()}
        root = self.folder / OBJECTS
        if not root.is_dir():
            return
        for path in root.glob("*/*"):
            if path.name not in wanted:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        for leftover in self.folder.glob(f"{_TEMP_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()

    # -- restoring -------------------------------------------------------------------------
    def restore(self, client: S3Client, bucket: str) -> Saved:
        """Put every saved object into ``bucket``; objects whose saved bytes are missing or
        damaged are left out and named in the result."""
        entries = self.entries()

        def put(item: tuple[str, Entry]) -> str | None:
            key, entry = item
            try:
                data = self._blob(entry.sha256).read_bytes()
            except FileNotFoundError:
                return key
            if hashlib.sha256(data).hexdigest() != entry.sha256:
                return key
            client.put_object(
                Bucket=bucket,
                Key=key,
                Body=data,
                ContentType=entry.content_type,
                Metadata=entry.metadata,
            )
            return None

        with ThreadPoolExecutor(max_workers=JOBS) as pool:
            unreadable = tuple(sorted(k for k in pool.map(put, entries.items()) if k))
        restored = len(entries) - len(unreadable)
        size = sum(e.size for k, e in entries.items() if k not in unreadable)
        return Saved(restored, size, restored, self.saved_at(), unreadable)


class PeriodicSave:
    """Saves every ``interval`` seconds on a background thread until ``stop``; a failed save
    is reported once per run of failures through ``warn`` and retried next time."""

    def __init__(
        self,
        save: Callable[[], Saved],
        interval: float,
        warn: Callable[[str], None],
    ) -> None:
        self._save = save
        self._interval = interval
        self._warn = warn
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="bucket-snapshot", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._save()
            except Exception as exc:  # the server may be busy or gone; the next save retries
                if not self._failing:
                    self._warn(f"could not save the bucket ({type(exc).__name__}: {exc})")
                self._failing = True
            else:
                self._failing = False

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def _list(client: S3Client, bucket: str) -> dict[str, tuple[str, int]]:
    """Every key of the bucket with its ETag and size."""
    found: dict[str, tuple[str, int]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found[item["Key"]] = (str(item["ETag"]), int(item["Size"]))
    return found


def _durable_write(path: Path, data: bytes) -> None:
    """Write to a temporary name beside ``path``, flush it to disk, rename it over ``path``,
    and flush the folder: after a crash ``path`` holds the old bytes or the new, never half."""
    fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
