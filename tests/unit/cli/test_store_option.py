"""The store a command works on: a bucket or a folder from the global options, opened on first
use (``--help`` needs none), with the publisher's patient timeouts unless serving."""

from __future__ import annotations

import pytest

from tickerserve.cli.store_option import Target
from tickerserve.errors import ConfigError
from tickerserve.storage.store import PUBLISHING, SERVING, LocalStore, S3Store


def test_nothing_is_opened_until_a_command_needs_the_store(tmp_path):
    target = Target(store_path=str(tmp_path))
    assert target._store is None
    store = target.store
    assert isinstance(store, LocalStore) and store.root == tmp_path
    assert target.store is store  # opened once


def test_a_bucket_opens_an_s3_store_with_the_publishers_timeouts():
    store = Target(bucket="models", region="eu-west-1").store
    assert isinstance(store, S3Store)
    assert (store.bucket, store.timeouts) == ("models", PUBLISHING)
    serving = Target(bucket="models", timeouts=SERVING).store
    assert serving.timeouts == SERVING  # type: ignore[attr-defined]


def test_without_a_store_the_message_says_how_to_give_one():
    with pytest.raises(ConfigError) as caught:
        _ = Target().store
    assert caught.value.message == (
        "no model store: pass --bucket NAME or --store PATH (or set TICKERSERVE_BUCKET / "
        "TICKERSERVE_STORE_PATH)"
    )


def test_a_registry_key_that_could_leave_the_store_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"^invalid object key '\.\./registry\.json'"):
        _ = Target(store_path=str(tmp_path), registry_key="../registry.json").store


def test_both_a_bucket_and_a_folder_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"^give either a bucket or a local store path, not both$"):
        _ = Target(bucket="models", store_path=str(tmp_path)).store
