"""Compare-and-swap on one object: created once, replaced only from what was read, retried from
a fresh read when another writer got there first, and never written when the change refuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli_support import FaultyStore
from tickerserve.errors import Conflict
from tickerserve.storage.compare_and_swap import compare_and_swap
from tickerserve.storage.store import KeyNotFound, LocalStore, PreconditionFailed, S3Store, Store

KEY = "metadata/counter.json"


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    s3: S3Store = request.getfixturevalue("s3_store")
    return s3


def increment(current: bytes | None) -> tuple[bytes, int]:
    value = int(current or b"0") + 1
    return str(value).encode(), value


def test_a_missing_object_is_created_and_the_change_sees_none(store: Store):
    seen: list[bytes | None] = []

    def change(current: bytes | None) -> tuple[bytes, str]:
        seen.append(current)
        return b"first", "created"

    assert compare_and_swap(store, KEY, change) == "created"
    assert seen == [None]
    blob = store.get(KEY)
    assert blob is not None and blob.data == b"first"


def test_an_existing_object_is_replaced_from_what_was_read(store: Store):
    store.put(KEY, b"41")
    assert compare_and_swap(store, KEY, increment) == 42
    blob = store.get(KEY)
    assert blob is not None and blob.data == b"42"


def test_a_concurrent_write_makes_the_change_run_again_on_fresh_bytes(store: Store):
    # Given another writer who increments the counter between our read and our write, once
    store.put(KEY, b"1")
    raced: list[str] = []

    def other_writer(key: str) -> None:
        if key == KEY and not raced:
            raced.append(key)
            store.put(KEY, b"10")

    # When we increment through that store
    result = compare_and_swap(FaultyStore(store, other_writer), KEY, increment)
    # Then our first write lost, the change ran again on the other writer's bytes: none is lost
    assert result == 11
    blob = store.get(KEY)
    assert blob is not None and blob.data == b"11"


def test_two_creators_racing_both_land(store: Store):
    # Given another writer creates the object between our (missing) read and our create
    raced: list[str] = []

    def other_creator(key: str) -> None:
        if key == KEY and not raced:
            raced.append(key)
            store.put(KEY, b"5", create_only=True)

    # When we create it too: the create-only write loses, the retry reads theirs and adds to it
    assert compare_and_swap(FaultyStore(store, other_creator), KEY, increment) == 6


def test_a_change_that_raises_writes_nothing(store: Store):
    store.put(KEY, b"7")

    def refuse(current: bytes | None) -> tuple[bytes, None]:
        raise Conflict(f"counter is at {current!r}; refusing")

    with pytest.raises(Conflict, match=r"^counter is at b'7'; refusing$"):
        compare_and_swap(store, KEY, refuse)
    blob = store.get(KEY)
    assert blob is not None and blob.data == b"7"


def test_a_change_that_raises_on_a_missing_object_creates_nothing(store: Store):
    def refuse(current: bytes | None) -> tuple[bytes, None]:
        raise ValueError("nothing to change")

    with pytest.raises(ValueError, match=r"^nothing to change$"):
        compare_and_swap(store, KEY, refuse)
    with pytest.raises(KeyNotFound, match=f"^no object at {re.escape(KEY)}$"):
        store.get(KEY)


def test_losing_every_race_gives_up_with_a_conflict_that_says_so(tmp_path: Path):
    # Given a writer who changes the object before each of our writes
    store = LocalStore(tmp_path)
    store.put(KEY, b"0")
    rival = iter(range(100, 200))

    def always_first(key: str) -> None:
        if key == KEY:
            store.put(KEY, str(next(rival)).encode())

    # When three attempts all lose
    with pytest.raises(PreconditionFailed) as caught:
        compare_and_swap(FaultyStore(store, always_first), KEY, increment, attempts=3)
    # Then a 409 says what to do, and the object holds only the rival's last write
    assert caught.value.status == 409
    assert caught.value.message == f"update of {KEY} lost 3 races in a row; try again"
    blob = store.get(KEY)
    assert blob is not None and blob.data == b"102"


def test_the_content_type_reaches_s3(s3_store: S3Store):
    compare_and_swap(s3_store, "metadata/h.jsonl", increment, content_type="application/x-ndjson")
    head = s3_store.client.head_object(Bucket=s3_store.bucket, Key="metadata/h.jsonl")
    assert head["ContentType"] == "application/x-ndjson"
