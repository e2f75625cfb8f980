"""Append-only JSON-lines histories: appends under racing writers (threads and separate
processes, a folder and S3) lose and duplicate nothing, rotation archives the bytes it replaces,
and readers skip what is not a record and mark deleted versions."""

from __future__ import annotations

import math
import multiprocessing
import re
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from tests.cli_support import FaultyStore
from tickerserve.layout import MONITORING_HISTORY_KEY, TRAINING_HISTORY_KEY
from tickerserve.storage.history import (
    append_records,
    archive_key,
    encode_records,
    mark_deleted,
    parse_records,
    read_records,
    versions_named,
)
from tickerserve.storage.store import LocalStore, PreconditionFailed, S3Store, Store

WRITERS = 4
LINES_EACH = 12


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def test_records_are_one_sorted_compact_object_per_line():
    assert encode_records([{"b": 1, "a": "x"}, {"n": None}]) == b'{"a":"x","b":1}\n{"n":null}\n'


def test_nan_is_refused_before_anything_is_written(store: LocalStore):
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        append_records(store, TRAINING_HISTORY_KEY, [{"auc": math.nan}])
    assert store.head(TRAINING_HISTORY_KEY) is None


def test_an_archive_key_sorts_by_time_and_is_unique():
    when = datetime(2026, 12, 1, 6, 15, 0, 123456, tzinfo=UTC)
    first, second = (
        archive_key(MONITORING_HISTORY_KEY, when),
        archive_key(MONITORING_HISTORY_KEY, when),
    )
    pattern = r"metadata/monitoring_history_archive_20261201T061500123456Z_[0-9a-f]{8}\.jsonl"
    assert re.fullmatch(pattern, first) and re.fullmatch(pattern, second)
    assert first != second


def test_appending_nothing_writes_nothing(store: LocalStore):
    assert append_records(store, TRAINING_HISTORY_KEY, []) is None
    assert store.head(TRAINING_HISTORY_KEY) is None


def test_appends_keep_order_and_repair_a_missing_final_newline(store: LocalStore):
    store.put(TRAINING_HISTORY_KEY, b'{"n":1}')  # written by hand, no trailing newline
    append_records(store, TRAINING_HISTORY_KEY, [{"n": 2}, {"n": 3}])
    assert [r["n"] for r in read_records(store, TRAINING_HISTORY_KEY).records] == [1, 2, 3]


def test_append_retries_after_a_concurrent_append(store: LocalStore):
    # Given another writer appends between our read and our write (once)
    append_records(store, TRAINING_HISTORY_KEY, [{"n": 1}])
    injected: list[bool] = []

    def race(key: str) -> None:
        if not injected:
            injected.append(True)
            append_records(store, key, [{"n": 2}])

    # When we append through that store
    append_records(FaultyStore(store, race), TRAINING_HISTORY_KEY, [{"n": 3}])
    # Then no line is lost
    assert [r["n"] for r in read_records(store, TRAINING_HISTORY_KEY).records] == [1, 2, 3]


def test_an_archive_keeps_the_bytes_it_replaced(store: LocalStore):
    append_records(store, MONITORING_HISTORY_KEY, [{"model": "a", "line": 0}])
    before = store.get(MONITORING_HISTORY_KEY)
    assert before is not None
    archive = append_records(
        store, MONITORING_HISTORY_KEY, [{"model": "a", "line": 1}], rotate_at=len(before.data) + 5
    )
    assert archive is not None
    stored = store.get(archive)
    assert stored is not None and stored.data == before.data
    after = store.get(MONITORING_HISTORY_KEY)
    assert after is not None and parse_records(after.data).records == [{"model": "a", "line": 1}]


def test_a_rotation_that_loses_every_race_leaves_no_orphan_archive(store: LocalStore):
    # Given a history at its rotation size and a rival who appends before each of our writes
    append_records(store, MONITORING_HISTORY_KEY, [{"line": 0}])
    size = len(store.get(MONITORING_HISTORY_KEY).data)  # type: ignore[union-attr]
    rival = iter(range(1, 100))

    def rival_appends(key: str) -> None:
        if key == MONITORING_HISTORY_KEY:
            append_records(store, key, [{"line": next(rival)}])

    # When our rotating append loses all its attempts
    with pytest.raises(PreconditionFailed, match="lost 2 races in a row"):
        append_records(
            FaultyStore(store, rival_appends),
            MONITORING_HISTORY_KEY,
            [{"line": "ours"}],
            rotate_at=size,
            attempts=2,
        )
    # Then every archive it made was discarded again: the rival's lines are all in the history
    archives = [i.key for i in store.list("metadata/") if "_archive_" in i.key]
    assert archives == []
    lines = [r["line"] for r in read_records(store, MONITORING_HISTORY_KEY).records]
    assert lines == [0, 1, 2]


def test_reading_a_missing_history_is_empty(store: LocalStore):
    log = read_records(store, TRAINING_HISTORY_KEY)
    assert (log.records, log.malformed) == ([], 0)


def test_lines_that_are_not_json_objects_are_counted_not_returned():
    data = b'{"n":1}\nnot json\n\n[1,2]\n"text"\n\xff\xfe\n{"n":2}\n'
    log = parse_records(data)
    assert log.records == [{"n": 1}, {"n": 2}]
    assert log.malformed == 4


def test_mark_deleted_marks_only_the_publish_before_the_delete():
    # Given a version published, deleted, and published again
    records = [
        {"event": "published", "model": "m", "version": "1.0.0"},
        {"event": "deleted", "model": "m", "version": "1.0.0", "deleted_at": "T1"},
        {"event": "published", "model": "m", "version": "1.0.0"},
    ]
    # When reading the history
    marked = mark_deleted(records)
    # Then only the first publish carries deleted_at, and the input is left as it was
    assert [r.get("deleted_at") for r in marked] == ["T1", "T1", None]
    assert "deleted_at" not in records[0]


def test_versions_named_are_every_published_or_deleted_version_of_that_model():
    records = [
        {"event": "published", "model": "etfs/SMH", "version": "1.0.0"},
        {"event": "deleted", "model": "etfs/SMH", "version": "1.0.4"},
        {"event": "published", "model": "etfs/SPY", "version": "7.0.0"},
        {"event": "monitor", "model": "etfs/SMH", "version": "3.0.0"},
        {"event": "published", "model": "etfs/SMH", "version": "bogus"},
        {"event": "published", "model": "etfs/SMH"},
    ]
    assert versions_named(records, "etfs/SMH") == {"1.0.0", "1.0.4"}
    assert versions_named(records, "etfs/QQQ") == set()


# Racing writers in separate processes, as two CLI runs or a CLI run and the monitor are.


def _writer(where: tuple[str, str], writer: int, rotate_at: int | None) -> None:
    kind, target = where
    store: Store
    if kind == "local":
        store = LocalStore(target)
    else:
        endpoint, bucket = target.split("|")
        client = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
        store = S3Store(bucket, client=client)
    for i in range(LINES_EACH):
        record = {"model": f"m{writer}", "line": i, "pad": "x" * 40}
        append_records(store, MONITORING_HISTORY_KEY, [record], rotate_at=rotate_at)


def race(where: tuple[str, str], rotate_at: int | None = None) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(where, w, rotate_at)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0


def all_lines(store: Store) -> tuple[list[dict], list[str]]:
    archives = sorted(
        i.key for i in store.list("metadata/") if "monitoring_history_archive_" in i.key
    )
    records: list[dict] = []
    for key in [*archives, MONITORING_HISTORY_KEY]:
        blob = store.get(key)
        assert blob is not None
        records += parse_records(blob.data).records
    return records, archives


def assert_each_line_once_in_order(records: list[dict]) -> None:
    seen = [(r["model"], r["line"]) for r in records]
    assert sorted(seen) == sorted((f"m{w}", i) for w in range(WRITERS) for i in range(LINES_EACH))
    for w in range(WRITERS):  # each writer's lines keep their order: appended, never rewritten
        mine = [line for model, line in seen if model == f"m{w}"]
        assert mine == list(range(LINES_EACH))


def test_racing_processes_append_and_lose_nothing(tmp_path: Path) -> None:
    race(("local", str(tmp_path)))
    records, archives = all_lines(LocalStore(tmp_path))
    assert archives == []
    assert_each_line_once_in_order(records)


def test_racing_processes_rotate_without_losing_or_duplicating_lines(tmp_path: Path) -> None:
    # a tiny rotation size: the history rotates many times while four writers race
    race(("local", str(tmp_path)), rotate_at=600)
    records, archives = all_lines(LocalStore(tmp_path))
    assert len(archives) >= 5
    assert_each_line_once_in_order(records)
    assert all(a.startswith("metadata/monitoring_history_archive_2") for a in archives)


def test_racing_processes_on_s3(server_bucket: S3Store) -> None:
    endpoint = server_bucket.client.meta.endpoint_url
    race(("s3", f"{endpoint}|{server_bucket.bucket}"), rotate_at=900)
    records, _ = all_lines(server_bucket)
    assert_each_line_once_in_order(records)
