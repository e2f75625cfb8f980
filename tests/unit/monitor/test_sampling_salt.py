"""The monitor's secret salt: created once in the store, then the same for every run; a store
that cannot give one leaves the run a salt of its own, never a failed run."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_support import FaultyStore
from tickerserve.errors import StorageUnavailable
from tickerserve.layout import MONITOR_SALT_KEY
from tickerserve.monitor.sampling_salt import SALT_BYTES, load_salt
from tickerserve.storage.store import LocalStore


def test_the_first_run_creates_the_salt_and_later_runs_read_the_same(tmp_path: Path):
    store = LocalStore(tmp_path)
    first = load_salt(store)
    assert len(first) == SALT_BYTES
    stored = json.loads((tmp_path / MONITOR_SALT_KEY).read_text())
    assert bytes.fromhex(stored["salt"]) == first
    assert load_salt(store) == first == load_salt(LocalStore(tmp_path))


def test_a_store_that_refuses_the_write_gives_this_run_a_salt_of_its_own(tmp_path: Path):
    def refuse(key: str) -> None:
        raise StorageUnavailable("access denied writing metadata/monitor_salt.json")

    store = FaultyStore(LocalStore(tmp_path), before_put=refuse)
    one, two = load_salt(store), load_salt(store)
    assert len(one) == len(two) == SALT_BYTES and one != two
    assert not (tmp_path / MONITOR_SALT_KEY).exists()


def test_a_salt_file_that_is_not_one_is_not_used(tmp_path: Path):
    store = LocalStore(tmp_path)
    store.put(MONITOR_SALT_KEY, b'{"salt": "not hex"}')
    salt = load_salt(store)
    assert len(salt) == SALT_BYTES and salt != b"not hex"
    store.put(MONITOR_SALT_KEY, json.dumps({"salt": "00ff"}).encode())  # too short to be secret
    assert load_salt(store) != bytes.fromhex("00ff")
