"""Object stores with one interface: S3 (boto3) and a local folder with the same layout.

Both support what the registry's compare-and-swap needs: conditional GET
(``If-None-Match``), conditional PUT (``If-Match``) and create-only PUT
(``If-None-Match: *``). Every object carries its sha256 (S3 user metadata),
so sync can skip unchanged files by content.

Every S3 call ends within an overall deadline (``Timeouts``; ``tickerserve.storage.deadline``): a
store that hangs or trickles costs a caller at most that long, then ``StorageUnavailable``.
A read is granted the time its bytes need only for the size its caller knows (``get(size=)``:
an artifact's recorded size, a listed size), never for what the server claims: a store that
answers ``Content-Length: 10**12`` gets no more time than its recorded size justifies.
The local folder store is a local disk and has none.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from tickerserve.errors import (
    Conflict,
    IntegrityError,
    NotFound,
    StorageUnavailable,
    TickerserveError,
)
from tickerserve.layout import validate_key
from tickerserve.storage.deadline import Deadline, call_with_deadline

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")


# boto3 and botocore read these for the S3 endpoint (a moto server, MinIO) when none is given.
ENV_ENDPOINT = "AWS_ENDPOINT_URL"
ENV_ENDPOINT_S3 = "AWS_ENDPOINT_URL_S3"
# Signs requests to a local endpoint when no credentials are configured (any key will do).
LOCAL_ACCESS_KEY = "tickerserve-local"


class KeyNotFound(NotFound):
    """The object does not exist."""

    code = "key_not_found"


class LargerThanRecorded(IntegrityError):
    """An object the store answers with more bytes than its recorded (or listed) size: its
    bytes cannot be the ones recorded, and a read of it is never granted the time."""


class PreconditionFailed(Conflict):
    """A conditional write lost: the object changed (or already exists)."""

    code = "precondition_failed"


@dataclass(frozen=True)
class Blob:
    """An object's bytes and the ETag that identifies this content."""

    data: bytes
    etag: str


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or HEAD tells about an object."""

    key: str
    size: int
    etag: str
    sha256: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Store(Protocol):
    """The operations the runtime and the CLI need from a model store."""

    def describe(self) -> str: ...

    def get(
        self, key: str, *, if_none_match: str | None = None, size: int | None = None
    ) -> Blob | None:
        """Read an object; None when ``if_none_match`` still matches (304). ``size``: the
        object's size as the caller knows it (recorded or listed): the transfer is granted
        the time those bytes need, and an object larger than that is refused."""
        ...

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_match: str | None = None,
        create_only: bool = False,
        content_type: str = "application/octet-stream",
    ) -> str:
        """Write an object and return its new ETag; ``PreconditionFailed`` if a condition fails."""
        ...

    def head(self, key: str) -> ObjectInfo | None: ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...

    def delete(self, keys: builtins.list[str]) -> None: ...


@dataclass(frozen=True)
class Timeouts:
    """How long one store call may take: ``call`` seconds, plus the time its bytes need at
    ``min_rate`` bytes per second (so a large artifact is not cut off, a stalled one is).

    The bytes counted are the ones the caller vouches for (a write's own, a read's recorded
    or listed size); a read of unknown size is granted at most ``unsized`` bytes' time,
    whatever ``Content-Length`` the server sends."""

    call: float
    min_rate: float
    unsized: int = 0


# The prediction function: each call ends well inside the 29 s function timeout even when a
# cold start makes three in a row (registry, metadata.json, artifacts in parallel); 20 MiB/s
# is a fraction of what Lambda gets from S3 in-region (a 100 MiB artifact may take 5 s more).
# Its reads of unknown size (the registry, metadata.json, a digest index) get the call's 5 s
# and no more: 100 MiB at the slowest rate, far beyond any of them.
SERVING = Timeouts(call=5.0, min_rate=20 * 1024 * 1024)
# The command line, on a laptop's uplink: patient, but never hung (a history file of unknown
# size may take up to 256 MiB's time, 17 minutes at the slowest rate).
PUBLISHING = Timeouts(call=30.0, min_rate=256 * 1024, unsized=256 * 1024 * 1024)
_READ_CHUNK = 1024 * 1024


class S3Store:
    """A bucket. Honours ``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3`` (boto3 does), so a moto
    server works with no code change. The client is created on first use, never at import.

    Every call ends within its ``timeouts`` (``StorageUnavailable`` otherwise), whatever the
    other end does: see ``tickerserve.storage.deadline``.
    """

    def __init__(
        self,
        bucket: str,
        *,
        client: S3Client | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        timeouts: Timeouts = SERVING,
    ) -> None:
        self.bucket = bucket
        self.timeouts = timeouts
        self._client = client
        self._endpoint_url = endpoint_url
        self._region = region
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"s3://{self.bucket}"

    @property
    def client(self) -> S3Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = _make_client(self._endpoint_url, self._region, self.timeouts)
        return self._client

    def reset(self) -> None:
        """Close the client; the next call makes a fresh one (new credentials chain, new
        connections; the parsed service description is reused). For SnapStart restores."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _call(self, what: str, key: str, work: Callable[[Deadline], T], size: int = 0) -> T:
        """``work`` within the deadline, botocore failures translated to domain errors."""
        try:
            return call_with_deadline(
                work,
                self.timeouts.call + size / self.timeouts.min_rate,
                what=f"{what} {key}",
                min_rate=self.timeouts.min_rate,
            )
        except TickerserveError:
            raise
        except Exception as exc:
            raise _translate(exc, key) from exc

    def get(
        self, key: str, *, if_none_match: str | None = None, size: int | None = None
    ) -> Blob | None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": validate_key(key)}
        if if_none_match:
            kwargs["IfNoneMatch"] = if_none_match

        def work(deadline: Deadline) -> Blob | None:
            try:
                response = self.client.get_object(**kwargs)
            except Exception as exc:
                if _s3_status(exc) == 304:
                    return None
                raise
            claimed = int(response.get("ContentLength") or 0)
            if size is not None and claimed > size:
                response["Body"].close()
                raise LargerThanRecorded(
                    f"{key}: the store claims {claimed} bytes where {size} are recorded"
                )
            deadline.allow_transfer(min(claimed, self.timeouts.unsized if size is None else size))
            return Blob(_read_body(response["Body"], deadline), response["ETag"])

        return self._call("GET", key, work)

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_match: str | None = None,
        create_only: bool = False,
        content_type: str = "application/octet-stream",
    ) -> str:
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": validate_key(key),
            "Body": data,
            "ContentType": content_type,
            "Metadata": {"sha256": sha256_hex(data)},
        }
        if if_match:
            kwargs["IfMatch"] = if_match
        if create_only:
            kwargs["IfNoneMatch"] = "*"
        return self._call(
            "PUT", key, lambda _: str(self.client.put_object(**kwargs)["ETag"]), len(data)
        )

    def head(self, key: str) -> ObjectInfo | None:
        def work(_: Deadline) -> Any:
            return self.client.head_object(
                Bucket=self.bucket, Key=validate_key(key), ChecksumMode="ENABLED"
            )

        try:
            response = self._call("HEAD", key, work)
        except KeyNotFound:
            return None
        metadata = dict(response.get("Metadata") or {})
        digest = metadata.get("sha256") or _full_object_sha256(response)
        return ObjectInfo(key, response["ContentLength"], response["ETag"], digest, metadata)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("LIST", prefix or "(all)", partial(_list_page, self.client, kwargs))
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"], item["Size"], item["ETag"])
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                return

    def delete(self, keys: builtins.list[str]) -> None:
        for start in range(0, len(keys), 1000):
            chunk: builtins.list[Any] = [
                {"Key": validate_key(k)} for k in keys[start : start + 1000]
            ]
            response = self._call(
                "DELETE", chunk[0]["Key"], partial(_delete_objects, self.client, self.bucket, chunk)
            )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise StorageUnavailable(
                    f"could not delete {first.get('Key')}: {first.get('Message')}"
                )


def _list_page(client: S3Client, kwargs: dict[str, Any], _: Deadline) -> Any:
    return client.list_objects_v2(**kwargs)


def _delete_objects(client: S3Client, bucket: str, objects: Any, _: Deadline) -> Any:
    return client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})


def _read_body(body: Any, deadline: Deadline) -> bytes:
    """Read a streaming body in chunks, dropping the connection once the caller gave up."""
    parts: builtins.list[bytes] = []
    try:
        while chunk := body.read(_READ_CHUNK):
            parts.append(chunk)
            if deadline.expired:
                raise StorageUnavailable("read abandoned: the caller's deadline passed")
    finally:
        body.close()
    return b"".join(parts)


def _full_object_sha256(response: Any) -> str | None:
    """An S3 SHA-256 checksum as hex, when it covers the whole object (not a multipart
    composite of part checksums, which looks like ``<base64>-<parts>``)."""
    checksum = response.get("ChecksumSHA256")
    if not checksum or "-" in checksum or response.get("ChecksumType") == "COMPOSITE":
        return None
    try:
        raw = base64.b64decode(checksum, validate=True)
    except ValueError:
        return None
    return raw.hex() if len(raw) == 32 else None


# botocore's data loader, shared by every client of this process (boto3's default session
# shares it the same way): parsing S3's service description is most of a new client's cost.
_loader: Any = None
_loader_lock = threading.Lock()


def _make_client(endpoint_url: str | None, region: str | None, timeouts: Timeouts) -> S3Client:
    """A client from a new botocore session, so its own credentials chain (what a SnapStart
    restore needs), over the process's parsed service descriptions. botocore alone: boto3's
    session would also import s3transfer for upload/download helpers nothing here uses
    (about a fifth of the cold S3 set-up)."""
    global _loader
    import botocore.session
    from botocore.config import Config

    # The overall deadline is what callers see; these only make an abandoned call (a black
    # hole) give up its thread and connection soon after it.
    config = Config(
        connect_timeout=2,
        read_timeout=min(10.0, timeouts.call),
        retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=32,
    )
    session = botocore.session.Session()
    with _loader_lock:
        if _loader is None:
            _loader = session.get_component("data_loader")
        else:
            session.register_component("data_loader", _loader)
    if _is_local(endpoint_url or os.environ.get(ENV_ENDPOINT_S3) or os.environ.get(ENV_ENDPOINT)):
        # A local S3 (the moto server of `make serve`) takes any key: the commands it prints
        # must work when pasted into a shell without AWS credentials. A configured key still
        # signs; this machine's instance or container role is never asked for.
        chain = session.get_component("credential_provider")
        for method in ("iam-role", "container-role"):
            chain.remove(method)
        if session.get_credentials() is None:
            session.set_credentials(LOCAL_ACCESS_KEY, LOCAL_ACCESS_KEY)
    client = session.create_client(
        "s3", endpoint_url=endpoint_url, region_name=region, config=config
    )
    return cast("S3Client", client)


def _is_local(endpoint_url: str | None) -> bool:
    """Whether an S3 endpoint is this machine (loopback), never AWS."""
    if not endpoint_url:
        return False
    from urllib.parse import urlsplit  # with the S3 client (botocore imports it anyway)

    host = urlsplit(endpoint_url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def _s3_status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status else None


def _translate(exc: Exception, key: str) -> Exception:
    """Map botocore failures to domain errors; unknown ones mean the store is unusable."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        status = _s3_status(exc)
        if code in ("NoSuchKey", "404", "NotFound") or status == 404:
            if code == "NoSuchBucket":
                return StorageUnavailable(f"bucket does not exist ({code})")
            return KeyNotFound(f"no object at {key}")
        if status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict"):
            return PreconditionFailed(f"{key} changed concurrently or already exists")
        if code == "AccessDenied" or status == 403:
            # Without s3:ListBucket on the key's prefix S3 answers 403, not 404, for a key
            # that does not exist: say both possibilities.
            return StorageUnavailable(
                f"access denied reading {key}: the object does not exist yet "
                "(nothing published?) or the caller lacks s3:GetObject on it"
            )
        return StorageUnavailable(f"storage error on {key}: {code or status}")
    return StorageUnavailable(f"storage unreachable: {type(exc).__name__}: {exc}")


class LocalStore:
    """A local folder with the bucket's layout. The ETag is the content's sha256; conditional
    writes are made atomic with an exclusive lock file and rename."""

    LOCK_NAME = ".tickerserve.lock"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return str(self.root)

    def reset(self) -> None:
        """Nothing to renew: a folder holds no connections or credentials."""

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def get(
        self, key: str, *, if_none_match: str | None = None, size: int | None = None
    ) -> Blob | None:
        """A local disk holds what it holds: ``size`` only matters to a remote store."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise KeyNotFound(f"no object at {key}") from None
        except IsADirectoryError:
            raise KeyNotFound(f"no object at {key}") from None
        except OSError as exc:
            raise StorageUnavailable(f"cannot read {path}: {exc.strerror}") from exc
        etag = _local_etag(data)
        if if_none_match and if_none_match == etag:
            return None
        return Blob(data, etag)

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_match: str | None = None,
        create_only: bool = False,
        content_type: str = "application/octet-stream",
    ) -> str:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._locked():
                if create_only and path.exists():
                    raise PreconditionFailed(f"{key} already exists")
                if if_match is not None:
                    try:
                        current = _local_etag(path.read_bytes())
                    except FileNotFoundError:
                        raise PreconditionFailed(f"{key} no longer exists") from None
                    if current != if_match:
                        raise PreconditionFailed(f"{key} changed concurrently")
                atomic_write(path, data)
        except OSError as exc:
            raise StorageUnavailable(f"cannot write {path}: {exc.strerror}") from exc
        return _local_etag(data)

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        if not path.is_file():
            return None
        data = path.read_bytes()
        digest = sha256_hex(data)
        return ObjectInfo(key, len(data), f'"{digest}"', digest)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        # Walk only the folder up to the prefix's last "/" (a day's partition, not the store);
        # a prefix that is no plain path walks the whole store and matches nothing.
        try:
            head = prefix.rpartition("/")[0]
            folder = self._path(head) if head else self.root
        except ValueError:
            folder = self.root
        if not folder.is_dir():
            return
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.name == self.LOCK_NAME or path.name.startswith(".tmp-"):
                continue
            key = path.relative_to(self.root).as_posix()
            if key.startswith(prefix):
                size = path.stat().st_size
                yield ObjectInfo(key, size, "")

    def delete(self, keys: builtins.list[str]) -> None:
        for key in keys:
            path = self._path(key)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            # Drop folders the delete left empty, never the store root itself.
            parent = path.parent
            while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / self.LOCK_NAME, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _local_etag(data: bytes) -> str:
    return f'"{sha256_hex(data)}"'


_NEW_PRIVATE_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temp name in the same folder, then rename: readers never see half a file.
    The temp file is made as ``tempfile.mkstemp`` makes one (a random name, created
    exclusively, owner-only), without importing tempfile and shutil into every cold start."""
    while True:
        tmp = path.parent / f".tmp-{os.urandom(8).hex()}"
        try:
            fd = os.open(tmp, _NEW_PRIVATE_FILE, 0o600)
        except FileExistsError:  # a name already taken: draw another
            continue
        break
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def open_store(
    *,
    bucket: str | None = None,
    store_path: str | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    timeouts: Timeouts = SERVING,
) -> Store:
    """The store a bucket name or a folder path names (exactly one of them)."""
    if bucket and store_path:
        raise ValueError("give either a bucket or a local store path, not both")
    if bucket:
        return S3Store(bucket, endpoint_url=endpoint_url, region=region, timeouts=timeouts)
    if store_path:
        return LocalStore(store_path)
    raise ValueError("no model store configured: set a bucket or a local store path")
