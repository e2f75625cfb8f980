"""The monitoring history under racing runs (separate processes), with and without rotation."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import boto3

from tickerserve.layout import MONITORING_HISTORY_KEY
from tickerserve.storage.history import append_records, parse_records
from tickerserve.storage.store import LocalStore, S3Store, Store

WRITERS = 4
LINES_EACH = 12


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


def test_racing_runs_append_and_lose_nothing(tmp_path: Path) -> None:
    race(("local", str(tmp_path)))
    records, archives = all_lines(LocalStore(tmp_path))
    assert archives == []
    assert_each_line_once_in_order(records)


def test_racing_runs_rotate_without_losing_or_duplicating_lines(tmp_path: Path) -> None:
    # a tiny rotation size: the history rotates many times while four writers race
    race(("local", str(tmp_path)), rotate_at=600)
    records, archives = all_lines(LocalStore(tmp_path))
    assert len(archives) >= 5
    assert_each_line_once_in_order(records)
    assert all(a.startswith("metadata/monitoring_history_archive_2") for a in archives)


def test_racing_runs_on_s3(server_bucket: S3Store) -> None:
    endpoint = server_bucket.client.meta.endpoint_url
    race(("s3", f"{endpoint}|{server_bucket.bucket}"), rotate_at=900)
    records, _ = all_lines(server_bucket)
    assert_each_line_once_in_order(records)


def test_an_archive_keeps_the_bytes_it_replaced(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
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
