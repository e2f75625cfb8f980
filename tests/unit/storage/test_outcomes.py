"""Outcomes: POST /outcomes and the direct action store realized results,
one JSON-lines object per batch; ``latest_outcomes`` reads them back, and the monitor's reader
streams them (``tickerserve outcomes``: ``cli/test_outcomes.py``)."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli_support import FaultyStore
from tests.support import load_event
from tickerserve.errors import StorageUnavailable
from tickerserve.http.api import Api
from tickerserve.layout import OUTCOMES_PREFIX
from tickerserve.monitor.capture_reader import ReadCounts
from tickerserve.monitor.outcome_join import KeyHasher, OutcomeIndex
from tickerserve.monitor.outcome_join import latest_outcomes as monitor_outcomes
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.outcomes import MAX_ITEMS, latest_outcomes, store_outcomes
from tickerserve.storage.store import LocalStore, S3Store, Store


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def api_for(store: Store, tmp_path: Path) -> Api:
    return Api(ModelService(Settings(cache_dir=str(tmp_path / "cache")), store=store))


def post(api: Api, body: Any, *, raw: str | None = None) -> tuple[int, dict[str, Any]]:
    event = load_event("rest_predict.json")
    event["path"] = event["resource"] = "/outcomes"
    event["body"] = raw if raw is not None else json.dumps(body)
    response = api.handle(event, None)
    return response["statusCode"], json.loads(response["body"])


def objects(store: Store) -> list[str]:
    return sorted(i.key for i in store.list(OUTCOMES_PREFIX))


def test_outcomes_round_trip_through_the_api(store: LocalStore, tmp_path: Path):
    # Given a label for a classifier's prediction and a value for a regressor's
    api = api_for(store, tmp_path)
    today = datetime.now(UTC).date().isoformat()
    status, body = post(api, {"outcomes": [
        {"request_id": "order-1842", "label": "BULL_PUT_SPREAD",
         "observed_at": "2026-12-01T22:00:00+01:00"},
        {"request_id": "vol:2026-12-01", "value": 0.0123},
    ]})  # fmt: skip
    # Then both are stored, in one JSON-lines object under the day they were received
    assert status == 200
    assert (body["stored"], body["unchanged"], body["failed"]) == (2, 0, 0)
    assert [r["status"] for r in body["results"]] == ["stored", "stored"]
    [key] = objects(store)
    assert key.startswith(f"outcomes/dt={today}/") and key.endswith(".jsonl")
    blob = store.get(key)
    assert blob is not None
    lines = [json.loads(line) for line in blob.data.splitlines()]
    assert [sorted(line) for line in lines] == [
        ["label", "observed_at", "received_at", "request_id"],
        ["observed_at", "received_at", "request_id", "value"],
    ]
    # And the reader gives them back with normalized times
    latest = latest_outcomes(store)
    assert latest["order-1842"].label == "BULL_PUT_SPREAD"
    assert latest["order-1842"].value is None
    assert latest["order-1842"].observed_at == "2026-12-01T21:00:00.000000Z"
    assert latest["vol:2026-12-01"].value == 0.0123
    assert latest["vol:2026-12-01"].observed_at is None
    assert latest["vol:2026-12-01"].received_at.startswith(today)


def test_resending_a_batch_is_idempotent_and_a_different_value_is_a_correction(
    store: LocalStore,
):
    first = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    batch: list[dict[str, Any]] = [
        {"request_id": "r1", "value": 1.5},
        {"request_id": "r2", "label": "A", "observed_at": "2026-12-01T22:00:00+01:00"},
    ]
    store_outcomes(store, batch, now=first)
    # Re-sending the same batch the same day (a time spelled another way) changes nothing
    batch[1]["observed_at"] = "2026-12-01T21:00:00Z"
    again = store_outcomes(store, batch, now=first.replace(hour=9))
    assert [r["status"] for r in again["results"]] == ["unchanged", "unchanged"]
    assert len(objects(store)) == 1
    assert latest_outcomes(store)["r1"].received_at == "2026-12-02T08:00:00.000000Z"
    # When a corrected value arrives later, in another batch
    store_outcomes(store, [{"request_id": "r1", "value": 2.0}], now=first.replace(hour=10))
    # Then the latest received wins, the earlier one is kept, and r2 is untouched
    latest = latest_outcomes(store)
    assert (latest["r1"].value, latest["r2"].label) == (2.0, "A")
    assert len(objects(store)) == 2


def test_the_same_outcome_inside_another_batch_is_a_duplicate_the_reader_folds(
    store: LocalStore,
):
    first = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    store_outcomes(store, [{"request_id": "a", "label": "X"}], now=first)
    store_outcomes(store, [{"request_id": "a", "label": "Y"}], now=first.replace(hour=9))
    # The first outcome again, beside a new one: a new object (another batch)
    store_outcomes(
        store,
        [{"request_id": "a", "label": "X"}, {"request_id": "b", "label": "Z"}],
        now=first.replace(hour=10),
    )
    assert len(objects(store)) == 3
    latest = latest_outcomes(store)
    assert {k: v.label for k, v in latest.items()} == {"a": "X", "b": "Z"}
    assert latest["a"].received_at == "2026-12-02T10:00:00.000000Z"


def test_a_correction_inside_one_request_lets_the_later_item_win(store: LocalStore):
    store_outcomes(store, [{"request_id": "r", "label": "A"}, {"request_id": "r", "label": "B"}])
    assert latest_outcomes(store)["r"].label == "B"
    # The monitor's index decides the same way
    hasher = KeyHasher(b"any salt of sixteen bytes")
    index = OutcomeIndex.build(
        monitor_outcomes(store, date(2000, 1, 1), date(2100, 1, 1)), hasher, hasher.keys(["r"])
    )
    found, codes, corrected = index.labels_for(hasher.keys(["r"]))
    assert found[0] and index.labels[codes[0]] == "B" and corrected[0]


@pytest.mark.parametrize(
    ("item", "code"),
    [
        ("not an object", "invalid_outcome"),
        ({"label": "A"}, "missing_field"),
        ({"request_id": "has space", "label": "A"}, "invalid_request_id"),
        ({"request_id": 12, "label": "A"}, "invalid_request_id"),
        ({"request_id": "r"}, "invalid_outcome"),
        ({"request_id": "r", "label": "A", "value": 1.0}, "invalid_outcome"),
        ({"request_id": "r", "label": ""}, "invalid_label"),
        ({"request_id": "r", "label": "x" * 129}, "invalid_label"),
        ({"request_id": "r", "label": 3}, "invalid_label"),
        ({"request_id": "r", "value": "1.0"}, "invalid_value"),
        ({"request_id": "r", "value": True}, "invalid_value"),
        ({"request_id": "r", "value": 1e999}, "invalid_value"),
        ({"request_id": "r", "value": 1.0, "observed_at": "yesterday"}, "invalid_observed_at"),
        ({"request_id": "r", "value": 1.0, "observed_at": 20261201}, "invalid_observed_at"),
        ({"request_id": "r", "value": 1.0, "ticker": "SMH"}, "unknown_fields"),
    ],
)
def test_a_malformed_item_gets_its_own_4xx_error_and_the_rest_is_stored(
    store: LocalStore, tmp_path: Path, item: Any, code: str
):
    status, body = post(
        api_for(store, tmp_path), {"outcomes": [item, {"request_id": "ok", "value": 1}]}
    )
    assert status == 200
    bad, good = body["results"]
    assert (bad["index"], bad["error"]["code"]) == (0, code)
    assert good["status"] == "stored"
    assert (body["stored"], body["failed"]) == (1, 1)
    assert list(latest_outcomes(store)) == ["ok"]


def test_nan_sent_as_a_json_literal_is_refused(store: LocalStore, tmp_path: Path):
    status, body = post(api_for(store, tmp_path), None,
                        raw='{"outcomes": [{"request_id": "r", "value": NaN}]}')  # fmt: skip
    assert status == 200
    assert body["results"][0]["error"]["code"] == "invalid_value"
    assert objects(store) == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ([], 400, "invalid_body"),
        ({"outcomes": []}, 400, "invalid_body"),
        ({"outcomes": {"request_id": "r"}}, 400, "invalid_body"),
        ({"outcomes": [], "extra": 1}, 400, "invalid_body"),
        ({"outcomes": [{"request_id": "r", "value": 1}] * (MAX_ITEMS + 1)}, 413,
         "batch_too_large"),
    ],
)  # fmt: skip
def test_a_body_that_is_not_an_outcomes_list_is_refused_whole(
    store: LocalStore, tmp_path: Path, body: Any, status: int, code: str
):
    assert post(api_for(store, tmp_path), body)[0] == status
    assert post(api_for(store, tmp_path), body)[1]["error"]["code"] == code
    assert objects(store) == []


def test_a_failing_store_answers_503_and_resending_stores_the_batch_once(
    store: LocalStore, tmp_path: Path
):
    # Given a store that fails writes for a while
    items = [{"request_id": f"r{i}", "value": float(i)} for i in range(3)] + [{"value": 1}]
    down = [True]

    def flaky(key: str) -> None:
        if down[0]:
            raise StorageUnavailable("storage error on put")

    api = api_for(FaultyStore(store, before_put=flaky), tmp_path)
    # When the outcomes are posted
    status, body = post(api, {"outcomes": items})
    # Then the answer is a 503, every valid outcome failed and nothing is half-written
    assert status == 503
    codes = [r.get("status") or r["error"]["code"] for r in body["results"]]
    assert codes == ["storage_unavailable"] * 3 + ["missing_field"]
    assert objects(store) == []
    # And re-sending once the store is back stores them; sending again changes nothing
    down[0] = False
    assert post(api, {"outcomes": items})[1]["stored"] == 3
    status, body = post(api, {"outcomes": items})
    assert (status, body["stored"], body["unchanged"], body["failed"]) == (200, 0, 3, 1)
    assert len(objects(store)) == 1
    assert len(latest_outcomes(store)) == 3


def test_the_direct_action_stores_outcomes(store: LocalStore, tmp_path: Path):
    answer = api_for(store, tmp_path).handle(
        {"action": "outcomes", "outcomes": [{"request_id": "d-1", "label": "IRON_CONDOR"}]}, None
    )
    assert answer["stored"] == 1
    assert latest_outcomes(store)["d-1"].label == "IRON_CONDOR"


def test_outcomes_work_on_s3_with_create_only_writes(s3_store: S3Store):
    item = {"request_id": "s3-1", "value": 0.5}
    assert store_outcomes(s3_store, [item])["stored"] == 1
    assert store_outcomes(s3_store, [item])["unchanged"] == 1
    assert latest_outcomes(s3_store)["s3-1"].value == 0.5


def test_the_reader_filters_by_day_received_and_request_id_and_skips_garbage(store: LocalStore):
    for day, rid in ((1, "a"), (2, "b"), (3, "c")):
        store_outcomes(store, [{"request_id": rid, "value": 1.0}],
                       now=datetime(2026, 12, day, 12, tzinfo=UTC))  # fmt: skip
    store.put("outcomes/dt=2026-12-02/garbage.json", b"{not json")
    store.put(
        "outcomes/dt=2026-12-02/mixed.jsonl",
        b'{"request_id": "d", "label": "UP"}\n[1, 2]\n{"request_id": "e"}\n\n',
    )
    skipped: dict[str, int] = {}
    latest = latest_outcomes(
        store,
        since=date(2026, 12, 2),
        until=date(2026, 12, 3),
        on_malformed=skipped.__setitem__,
    )
    assert sorted(latest) == ["b", "d"]
    # A hand-written line without received_at counts as received at the day's start
    assert latest["d"].received_at == "2026-12-02T00:00:00.000000Z"
    assert skipped == {
        "outcomes/dt=2026-12-02/garbage.json": 1,
        "outcomes/dt=2026-12-02/mixed.jsonl": 2,
    }
    assert list(latest_outcomes(store, request_ids=["c", "zz"])) == ["c"]
    # An open range lists every day once; since alone and until alone bound it
    assert sorted(latest_outcomes(store, since=date(2026, 12, 2))) == ["b", "c", "d"]
    assert sorted(latest_outcomes(store, until=date(2026, 12, 2))) == ["a"]


def test_the_reader_reads_many_objects_in_parallel_in_order(s3_store: S3Store):
    # Given 40 batches of 25 outcomes over two days, and a correction in the last batch
    for number in range(40):
        day = datetime(2026, 12, 1 + number // 20, 8, number, tzinfo=UTC)
        items = [{"request_id": f"r{number}-{i}", "value": float(i)} for i in range(25)]
        store_outcomes(s3_store, items, now=day)
    store_outcomes(s3_store, [{"request_id": "r0-0", "value": -1.0}],
                   now=datetime(2026, 12, 2, 23, tzinfo=UTC))  # fmt: skip
    # Then every outcome is read once, the correction wins, and the monitor's reader counts
    # every object and line
    latest = latest_outcomes(s3_store, since=date(2026, 12, 1), until=date(2026, 12, 3))
    assert len(latest) == 1000
    assert latest["r0-0"].value == -1.0
    counts = ReadCounts()
    streamed = list(monitor_outcomes(s3_store, date(2026, 12, 1), date(2026, 12, 3), counts))
    assert (len(streamed), counts.objects, counts.lines, counts.malformed) == (1001, 41, 1001, 0)
    # Day by day: everything received on December 1 comes before December 2
    days = [o.received_at[:10] for o in streamed]
    assert days == sorted(days)


# -- bad data never stops a batch or a run (issue 19) --------------------------------------------

# The items that made POST /outcomes answer 500 and store nothing, as raw JSON text (the
# lone surrogate and the 400-digit number can only be sent that way).
POISON = {
    "year_one_east_of_utc": ('{"request_id": "p1", "label": "UP", '
                             '"observed_at": "0001-01-01T00:00:00+01:00"}', "invalid_observed_at"),
    "lone_surrogate_label": ('{"request_id": "p2", "label": "\\ud800"}', "invalid_label"),
    "400_digit_value": ('{"request_id": "p3", "value": ' + "9" * 400 + "}", "invalid_value"),
    "400_digit_float": ('{"request_id": "p4", "value": 1' + "0" * 400 + ".5}", "invalid_value"),
    "year_9999_west_of_utc": ('{"request_id": "p5", "label": "UP", '
                              '"observed_at": "9999-12-31T23:59:59-01:00"}', "invalid_observed_at"),
    "observed_next_year": ('{"request_id": "p6", "label": "UP", '
                           '"observed_at": "2099-01-01T00:00:00Z"}', "invalid_observed_at"),
    "observed_before_1970": ('{"request_id": "p7", "label": "UP", '
                             '"observed_at": "1969-12-31T23:59:59Z"}', "invalid_observed_at"),
    "surrogate_field_name": ('{"request_id": "p8", "label": "UP", "\\udfff": 1}',
                             "unknown_fields"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(POISON))
def test_an_item_that_caused_a_500_is_a_per_item_400_and_the_rest_is_stored(
    store: LocalStore, tmp_path: Path, name: str
):
    # Given the poisoned item between two good ones
    raw, code = POISON[name]
    body = (
        '{"outcomes": [{"request_id": "before", "label": "UP"}, '
        + raw
        + ', {"request_id": "after", "value": 0.5}]}'
    )
    # When it is posted
    status, answer = post(api_for(store, tmp_path), None, raw=body)
    # Then the request succeeds, the bad item gets its own code, and both good ones are stored
    assert status == 200
    before, bad, after = answer["results"]
    assert bad["error"]["code"] == code
    assert (before["status"], after["status"]) == ("stored", "stored")
    assert (answer["stored"], answer["failed"]) == (2, 1)
    assert sorted(latest_outcomes(store)) == ["after", "before"]


def test_observed_at_is_kept_in_utc_and_may_be_up_to_a_day_ahead_of_receipt(store: LocalStore):
    now = datetime(2026, 12, 2, 8, tzinfo=UTC)
    answer = store_outcomes(store, [
        {"request_id": "a", "label": "UP", "observed_at": "2026-12-03T07:59:59+00:00"},
        {"request_id": "b", "label": "UP", "observed_at": "2026-12-03T08:00:01Z"},
        {"request_id": "c", "label": "UP", "observed_at": "1970-01-01T01:00:00+01:00"},
        {"request_id": "d", "label": "UP", "observed_at": "2026-12-01"},
    ], now=now)  # fmt: skip
    assert [r.get("status", r.get("error", {}).get("code")) for r in answer["results"]] == [
        "stored", "invalid_observed_at", "stored", "stored",
    ]  # fmt: skip
    latest = latest_outcomes(store)
    assert latest["c"].observed_at == "1970-01-01T00:00:00.000000Z"
    assert latest["d"].observed_at == "2026-12-01T00:00:00.000000Z"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=8,
)  # fmt: skip
ITEMS = (
    st.fixed_dictionaries(
        {},
        optional={
            "request_id": st.sampled_from(["r-1", "r-2"]) | JSON_VALUES,
            "label": st.text(max_size=4) | JSON_VALUES,
            "value": st.integers(min_value=-(10**400), max_value=10**400) | JSON_VALUES,
            "observed_at": st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
            | JSON_VALUES,
        },
    )
    | JSON_VALUES
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(ITEMS, min_size=1, max_size=4))
def test_no_item_can_fail_the_others_or_the_request(items: list[Any]):
    # Given any JSON values as items (lone surrogates, huge integers, any time zone)
    with tempfile.TemporaryDirectory() as root:
        store = LocalStore(root)
        # When they are stored
        answer = store_outcomes(store, items, now=datetime(2026, 12, 2, tzinfo=UTC))
        # Then each gets its own result, the answer is JSON, and the valid ones read back
        assert len(answer["results"]) == len(items)
        json.dumps(answer)
        stored = [r for r in answer["results"] if r.get("status") == "stored"]
        assert answer["stored"] == len(stored)
        assert {r["request_id"] for r in stored} == set(latest_outcomes(store))
    for r in answer["results"]:
        if "error" in r:
            assert r["error"]["code"] in ITEM_CODES


ITEM_CODES = {
    "invalid_outcome", "unknown_fields", "missing_field", "invalid_request_id", "invalid_label",
    "invalid_value", "invalid_observed_at",
}  # fmt: skip


def test_the_reader_skips_what_it_cannot_read_and_counts_each_reason(store: LocalStore):
    # Given an object with a good line and lines no reader could take: the received_at
    # (year 1 east of UTC), JSON that is not an outcome, not JSON, invalid UTF-8, huge numbers
    lines = [
        b'{"request_id": "good", "label": "UP", "received_at": "2026-12-02T09:00:00Z"}',
        b'{"request_id": "r1", "label": "UP", "received_at": "0001-01-01T00:00:00+01:00"}',
        b'{"request_id": "r2", "label": "UP", "received_at": "tomorrow"}',
        b'{"request_id": "r3", "value": ' + b"9" * 400 + b"}",
        b'{"request_id": "r4", "value": 1e999}',
        b'{"request_id": "r5", "label": "\\ud800"}',
        b'{"request_id": "r6", "label": "\xff\xfe"}',
        b'{"request_id": 7, "label": "UP"}',
        b"[1, 2]",
        b"{not json",
        b'{"request_id": "r8", "label": "UP", "observed_at": "0001-01-01T00:00:00+01:00"}',
    ]
    store.put("outcomes/dt=2026-12-02/hand-written.jsonl", b"\n".join(lines))
    # When the monitor's reader streams them
    counts = ReadCounts()
    read = list(monitor_outcomes(store, date(2026, 12, 2), date(2026, 12, 3), counts))
    # Then the good line and the one with an unreadable observed_at (dropped) are read, and
    # every other line is counted under its reason
    assert [(o.request_id, o.observed_at) for o in read] == [("good", None), ("r8", None)]
    assert read[0].received_at == "2026-12-02T09:00:00.000000Z"
    assert counts.reasons == {"invalid_time": 2, "not_json": 5, "not_an_outcome": 2}
    assert counts.to_dict()["skipped"] == 9 and counts.lines == 11
