"""The monitoring commands as a user runs them: publish --reference, baseline, monitor run,
monitor report, history monitoring."""

from __future__ import annotations

import csv
import gzip
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from tests.capture_support import ListSink
from tests.cli_support import cli, cli_json, run_on_terminal
from tests.family_support import families
from tests.integration.serving import TICKERSERVE
from tests.monitor_support import (
    DAY0,
    past_wins,
    reference_rows,
    serve_spy_on_two_signals,
    set_shadow,
    stamp,
    write_capture,
    write_outcomes,
)
from tests.network_support import FEATURES, networks, train_ppo, write_ppo_run
from tests.support import DemoModels
from tests.unit.monitor.test_evaluate import SHIFTED, traffic
from tickerserve.baselines.persistence import load_baseline
from tickerserve.http.api import Api
from tickerserve.layout import (
    MONITORING_HISTORY_KEY,
    TRAINING_HISTORY_KEY,
    baseline_sidecar_key,
    index_key,
    ranges_sidecar_key,
)
from tickerserve.publishing.release import publish_bundle
from tickerserve.serving.capture import Capture
from tickerserve.serving.model import LoadedModel
from tickerserve.serving.predict import predict
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.bundle import read_metadata
from tickerserve.storage.history import read_records
from tickerserve.storage.registry import read_registry
from tickerserve.storage.store import LocalStore, sha256_hex
from tickerserve.storage.version_index import read_index

REGISTRY = "metadata/asset_registry.json"
SINCE, UNTIL = DAY0.isoformat(), "2026-12-08"


def native_folder(path: Path, bundle) -> Path:
    path.mkdir(parents=True)
    for name, data in bundle.files.items():
        (path / name).write_bytes(data)
    (path / "metadata.json").write_bytes(bundle.metadata_bytes)
    return path


def reference_csv(
    path: Path, bundle, rows: int = 1500, *, labels: bool = True, seed: int = 0
) -> Path:
    """All of the version's feature columns (it uses a subset), the label, and a stray column."""
    meta = bundle.metadata
    rng = np.random.default_rng(seed)
    x = reference_rows(rng, rows, len(meta.feature_names))
    used = [meta.feature_names.index(n) for n in meta.used_features]
    truth = LoadedModel(meta, bundle.files).predict_proba(x[:, used]).argmax(axis=1)
    flip = rng.random(rows) < 0.3
    truth[flip] = rng.integers(0, len(meta.classes), flip.sum())
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*meta.feature_names, *(["label"] if labels else []), "note"])
        for i in range(rows):
            cells = ["" if np.isnan(v) else f"{v:.6f}" for v in x[i]]
            writer.writerow([*cells, *([meta.classes[truth[i]]] if labels else []), "x"])
    return path


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    return str(tmp_path / "store")


def test_publish_with_a_reference_stores_the_baseline_in_the_version(tmp_path, store_path, models):
    folder = native_folder(tmp_path / "smh", models.smh)
    ref = reference_csv(tmp_path / "ref.csv", models.smh)
    out = cli_json("--store", store_path, "publish", str(folder), "--model", "etfs/SMH",
                   "--alias", "production", "--reference", str(ref),
                   "--training-window", "2020-01-02:2025-06-30",
                   "--validation-window", "2025-07-01:2025-12-31")  # fmt: skip
    assert out["baseline"]["rows"] == 1500 and out["baseline"]["features"] == 6
    assert 0.6 < out["baseline"]["metrics"]["accuracy"] < 0.8  # the 30% flipped labels
    assert set(out["artifacts"]) == {"model.txt", "baseline.json"}
    store = LocalStore(store_path)
    entry = read_registry(store, REGISTRY).registry.models["etfs/SMH"].aliases["production"]
    meta, digest = read_metadata(store, "etfs/SMH", entry.version)
    assert digest == entry.metadata_sha256  # baseline.json's sha256 is in the chain
    stored = load_baseline(store, meta)
    assert stored is not None and stored.where == "version"
    assert stored.baseline.training.start == "2020-01-02"
    assert stored.baseline.validation.end == "2025-12-31"
    assert list(stored.baseline.features) == meta.used_features
    # its feature ranges are in metadata.json (in the chain, nothing more to read), fitted from
    # the same reference at the default quantiles
    assert stored.baseline.ranges is not None
    assert meta.ranges == stored.baseline.ranges.to_dict()
    assert meta.ranges["quantiles"] == [0.001, 0.999]
    # text output says what was fitted
    again = native_folder(tmp_path / "smh2", models.smh_v2)
    text = cli("--store", store_path, "publish", str(again), "--model", "etfs/SMH",
               "--reference", str(ref))  # fmt: skip
    assert text.exit_code == 0 and "baseline of etfs/SMH 1.0.1: 1500 reference rows" in text.stdout


def test_baseline_attaches_a_sidecar_with_a_recorded_digest(tmp_path, store_path, models):
    store = LocalStore(store_path)
    publish_bundle(store, models.smh, registry_key=REGISTRY)
    ref = reference_csv(tmp_path / "ref.csv", models.smh, labels=False)
    out = cli_json("--store", store_path, "baseline", "etfs/SMH@1.0.0", "--reference", str(ref))
    assert (
        out["key"] == baseline_sidecar_key("etfs/SMH", "1.0.0") == "etfs/SMH/baselines/1.0.0.json"
    )
    assert out["metrics"] == {}  # no label column: distributions only
    # the sidecar's sha256 is recorded in the model's digest index, beside the version's own
    entry = read_index(store, "etfs/SMH").index.versions["1.0.0"]
    assert entry.sidecars["baseline.json"] == out["sha256"]
    assert set(entry.sidecars) == {"baseline.json", "ranges.json"}  # the feature ranges too
    assert out["sha256"] == sha256_hex((store.root / out["key"]).read_bytes())
    history = read_records(store, TRAINING_HISTORY_KEY).records
    assert not [r for r in history if r.get("event") == "baseline"]  # the index, not history
    stored = load_baseline(store, read_metadata(store, "etfs/SMH", "1.0.0")[0])
    assert stored is not None and (stored.where, stored.sha256) == ("sidecar", out["sha256"])
    # a second baseline is refused unless --replace
    result = cli("--store", store_path, "baseline", "etfs/SMH", "--reference", str(ref))
    assert result.exit_code == 2
    assert "already has a baseline; pass --replace" in result.stderr
    replaced = cli_json("--store", store_path, "baseline", "etfs/SMH@production", "--reference",
                        str(reference_csv(tmp_path / "ref2.csv", models.smh, seed=1)),
                        "--replace")  # fmt: skip
    assert replaced["sha256"] != out["sha256"]
    assert (
        read_index(store, "etfs/SMH").index.versions["1.0.0"].sidecars["baseline.json"]
        == (replaced["sha256"])
    )
    # and validate checks the sidecar against the index
    valid = cli_json("--store", store_path, "validate", "etfs/SMH@1.0.0")
    assert valid["baseline"] == {"where": "sidecar", "sha256": replaced["sha256"], "rows": 1500}
    assert valid["ranges"] == {
        "where": "sidecar", "quantiles": [0.001, 0.999], "estimated": False, "features": 6,
    }  # fmt: skip


def test_a_version_the_index_does_not_record_gets_no_sidecar(tmp_path, store_path, models):
    store = LocalStore(store_path)
    publish_bundle(store, models.smh, registry_key=REGISTRY)
    store.delete([index_key("etfs/SMH")])  # a store from before the digest index
    ref = reference_csv(tmp_path / "ref.csv", models.smh, rows=50)
    result = cli("--store", store_path, "baseline", "etfs/SMH@1.0.0", "--reference", str(ref))
    assert result.exit_code == 2
    assert result.stderr == (
        "error: etfs/SMH 1.0.0 is not recorded in its digest index: run `tickerserve migrate` "
        "first\n"
    )
    assert not (store.root / baseline_sidecar_key("etfs/SMH", "1.0.0")).exists()


def test_delete_takes_the_version_s_sidecar_with_it(tmp_path, store_path, models):
    store = LocalStore(store_path)
    publish_bundle(store, models.smh, registry_key=REGISTRY)
    publish_bundle(store, models.smh_v2, registry_key=REGISTRY, aliases=())
    ref = reference_csv(tmp_path / "ref.csv", models.smh, rows=50)
    cli_json("--store", store_path, "baseline", "etfs/SMH@1.0.1", "--reference", str(ref))
    assert (store.root / ranges_sidecar_key("etfs/SMH", "1.0.1")).exists()
    assert cli("--store", store_path, "delete", "etfs/SMH", "1.0.1").exit_code == 0
    assert not (store.root / baseline_sidecar_key("etfs/SMH", "1.0.1")).exists()
    assert not (store.root / ranges_sidecar_key("etfs/SMH", "1.0.1")).exists()
    assert read_index(store, "etfs/SMH").index.is_deleted("1.0.1")


def test_publish_takes_the_range_quantiles_and_validate_refuses_tampered_ranges(
    tmp_path, store_path, models
):
    folder = native_folder(tmp_path / "smh", models.smh)
    ref = reference_csv(tmp_path / "ref.csv", models.smh)
    bad = cli("--store", store_path, "publish", str(folder), "--model", "etfs/SMH",
              "--reference", str(ref), "--range-quantiles", "0.01")  # fmt: skip
    assert bad.exit_code == 2
    assert "--range-quantiles '0.01': expected LO:HI, e.g. 0.001:0.999" in bad.stderr
    assert not (Path(store_path) / "etfs").exists()  # nothing written
    cli_json("--store", store_path, "publish", str(folder), "--model", "etfs/SMH",
             "--reference", str(ref), "--range-quantiles", "0:1")  # fmt: skip
    store = LocalStore(store_path)
    meta, _ = read_metadata(store, "etfs/SMH", "1.0.0")
    assert meta.ranges is not None and meta.ranges["quantiles"] == [0.0, 1.0]
    with ref.open() as handle:  # 0 and 1: the reference's smallest and largest values
        rsi = [float(r["rsi_14"]) for r in csv.DictReader(handle) if r["rsi_14"]]
    assert meta.ranges["features"]["rsi_14"][:2] == [min(rsi), max(rsi)]
    valid = cli_json("--store", store_path, "validate", "etfs/SMH@1.0.0")
    assert valid["ranges"]["where"] == "metadata"
    # ranges kept beside a version are checked against their recorded digest
    publish_bundle(store, models.smh_v2, registry_key=REGISTRY)
    cli_json("--store", store_path, "baseline", "etfs/SMH@1.0.1", "--reference", str(ref))
    path = store.root / ranges_sidecar_key("etfs/SMH", "1.0.1")
    path.write_bytes(path.read_bytes().replace(b'"estimated":false', b'"estimated":true'))
    result = cli("--store", store_path, "validate", "etfs/SMH@1.0.1")
    assert result.exit_code == 1
    assert "etfs/SMH 1.0.1 is not valid: its ranges: etfs/SMH 1.0.1: ranges sha256" in (
        result.stderr
    )


def test_validate_refuses_a_tampered_or_unrecorded_sidecar(tmp_path, store_path, models):
    store = LocalStore(store_path)
    publish_bundle(store, models.smh, registry_key=REGISTRY)
    ref = reference_csv(tmp_path / "ref.csv", models.smh, rows=50)
    cli_json("--store", store_path, "baseline", "etfs/SMH@1.0.0", "--reference", str(ref))
    path = store.root / baseline_sidecar_key("etfs/SMH", "1.0.0")
    path.write_bytes(path.read_bytes().replace(b'"rows":50', b'"rows":51'))
    result = cli("--store", store_path, "validate", "etfs/SMH@1.0.0")
    assert result.exit_code == 1
    assert "etfs/SMH 1.0.0 is not valid: its baseline: etfs/SMH 1.0.0: baseline sha256" in (
        result.stderr
    )
    assert "does not match the recorded" in result.stderr
    # a sidecar put there by hand, with no digest recorded, is not trusted either
    publish_bundle(store, models.smh_v2, registry_key=REGISTRY)
    (store.root / baseline_sidecar_key("etfs/SMH", "1.0.1")).write_bytes(path.read_bytes())
    result = cli("--store", store_path, "validate", "etfs/SMH@1.0.1")
    assert result.exit_code == 1
    assert "has no sha256 recorded in its digest index" in result.stderr


def test_a_tampered_sidecar_is_refused_by_the_monitor(tmp_path, store_path, models):
    store = LocalStore(store_path)
    publish_bundle(store, models.smh, registry_key=REGISTRY)
    ref = reference_csv(tmp_path / "ref.csv", models.smh)
    cli_json("--store", store_path, "baseline", "etfs/SMH@1.0.0", "--reference", str(ref))
    path = store.root / "etfs/SMH/baselines/1.0.0.json"
    path.write_bytes(path.read_bytes().replace(b'"rows":1500', b'"rows":1501'))
    out = cli_json("--store", store_path, "monitor", "run", "--since", SINCE, "--until", UNTIL)
    champion = out["models"][0]["champion"]
    assert champion["baseline"]["found"] is False
    assert "does not match the recorded" in champion["baseline"]["problem"]
    assert out["models"][0]["feature_drift"] is None


def test_parquet_references_read_like_csv(tmp_path, store_path, models):
    store = LocalStore(store_path)
    publish_bundle(store, models.smh, registry_key=REGISTRY)
    ref = reference_csv(tmp_path / "ref.csv", models.smh)
    with ref.open() as handle:
        rows = list(csv.DictReader(handle))
    columns = {k: [r[k] or None for r in rows] for k in rows[0]}
    table = pa.table({k: (pa.array([None if v is None else float(v) for v in vals])
                          if k not in ("label", "note") else pa.array(vals))
                      for k, vals in columns.items()})  # fmt: skip
    pq.write_table(table, tmp_path / "ref.parquet")
    from_csv = cli_json(
        "--store", store_path, "baseline", "etfs/SMH@1.0.0", "--reference", str(ref)
    )
    from_parquet = cli_json("--store", store_path, "baseline", "etfs/SMH@1.0.0", "--reference",
                            str(tmp_path / "ref.parquet"), "--replace")  # fmt: skip
    assert from_parquet["metrics"] == pytest.approx(from_csv["metrics"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("rsi_14,label\n1,A\n", "missing feature column(s) iv_percentile, atr_pct, ret_20d"),
        ("", "needs a header row"),
        ("a,a\n1,2\n", "needs a header row of distinct column names"),
    ],
)
def test_bad_references_are_refused_and_nothing_is_written(
    tmp_path, store_path, models, content, message
):
    folder = native_folder(tmp_path / "smh", models.smh)
    ref = tmp_path / "bad.csv"
    ref.write_text(content)
    result = cli("--store", store_path, "publish", str(folder), "--model", "etfs/SMH",
                 "--reference", str(ref))  # fmt: skip
    assert result.exit_code == 2 and message in result.stderr and result.stderr.startswith("error:")
    assert list(LocalStore(store_path).list("")) == []


def test_a_non_numeric_cell_is_named(tmp_path, store_path, models):
    store = LocalStore(store_path)
    publish_bundle(store, models.smh, registry_key=REGISTRY)
    ref = reference_csv(tmp_path / "ref.csv", models.smh, rows=20)
    text = ref.read_text().splitlines()
    text[3] = "abc" + text[3][text[3].index(",") :]
    ref.write_text("\n".join(text) + "\n")
    result = cli("--store", store_path, "baseline", "etfs/SMH@1.0.0", "--reference", str(ref))
    assert result.exit_code == 2
    assert "column 'rsi_14' row 3: 'abc' is not a number" in result.stderr


def monitored_store(tmp_path: Path, store_path: str, models: DemoModels) -> None:
    folder = native_folder(tmp_path / "smh", models.smh)
    ref = reference_csv(tmp_path / "ref.csv", models.smh)
    cli_json("--store", store_path, "publish", str(folder), "--model", "etfs/SMH",
             "--alias", "production", "--reference", str(ref))  # fmt: skip
    folder2 = native_folder(tmp_path / "smh2", models.smh_v2)
    cli_json("--store", store_path, "publish", str(folder2), "--model", "etfs/SMH",
             "--alias", "challenger", "--reference", str(ref))  # fmt: skip
    store = LocalStore(store_path)
    set_shadow(store, "etfs/SMH", "challenger")
    names = models.smh.metadata.used_features
    # the reference's labels agree with the model 77.5% of the time: a champion right 76% of
    # the time has hardly drifted; the challenger is right 92% of the time
    traffic(store, names, models.smh.metadata.classes, shift=SHIFTED, champion_right=0.76,
            challenger_right=0.92)  # fmt: skip


def test_monitor_run_prints_a_table_and_appends_history(tmp_path, store_path, models):
    monitored_store(tmp_path, store_path, models)
    past_wins(LocalStore(store_path), before=datetime.now(UTC).date())
    result = cli("--store", store_path, "monitor", "run", "--since", SINCE, "--until", UNTIL)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("monitor run ")
    assert "2800 captured lines, 0 skipped, 2800 request ids with outcomes" in lines[0]
    header, row = lines[1].split(), lines[2]
    assert header[:3] == ["MODEL", "CHAMPION", "ROWS"]
    assert row.startswith("etfs/SMH") and "(2 drifted)" in row and row.endswith("switch")
    # one sign for drift, said in words; k of n windows and the days in a row
    assert re.search(
        r"accuracy 0\.\d{3} \(baseline 0\.\d{3}\) +[+-]\d+\.\d% \((worse|better)\)", row
    )
    assert "1.0.1: won 7 of 7 windows, 3 day(s) in a row" in row
    assert "DRIFT: how much worse than its baseline the champion is (+ worse, - better)" in (
        result.stdout
    )
    assert "1 line(s) appended to metadata/monitoring_history.jsonl" in result.stdout
    history = cli_json("--store", store_path, "history", "monitoring")
    assert len(history) == 3 and history[-1]["action"] == "switch"
    shown = cli("--store", store_path, "history", "monitoring").stdout
    assert "etfs/SMH" in shown and "switch" in shown and "SWITCH TO MODEL B" in shown


def test_monitor_run_validates_its_options(store_path):
    for args, message in [
        (("--since", "2026-13-01"), "--since '2026-13-01': expected a date YYYY-MM-DD"),
        (("--since", "2026-12-05", "--until", "2026-12-01"), "must be after --since"),
        (("--psi-watch", "0.5", "--psi-drift", "0.2"), "psiWatch (0.5) must be <= psiDrift (0.2)"),
        (("--alpha", "2"), "alpha must be in (0, 1], not 2.0"),
        (("--switch-win-rate", "0"), "switchWinRate must be in (0, 1], not 0.0"),
    ]:
        result = cli("--store", store_path, "monitor", "run", *args)
        assert result.exit_code == 2, args
        assert result.stderr == f"error: {message}\n" or message in result.stderr


def test_monitor_report_writes_a_self_contained_page(tmp_path, store_path, models):
    monitored_store(tmp_path, store_path, models)
    past_wins(LocalStore(store_path), before=datetime.now(UTC).date())
    for _ in range(2):
        cli("--store", store_path, "monitor", "run", "--since", SINCE, "--until", UNTIL)
    out, png = tmp_path / "report.html", tmp_path / "report.png"
    result = cli("--store", store_path, "monitor", "report", "--out", str(out), "--png", str(png))
    assert result.exit_code == 0, result.stderr
    page = out.read_text()
    # drift, feature PSI, win rate, accuracy realized and estimated over time; SMH's features
    assert page.count("<svg") == 5
    # self-contained: nothing to fetch or run
    for reference in ("<script", "src=", 'href="http', "url(http", "<link"):
        assert reference not in page
    for text in ("etfs/SMH", "switch", "SWITCH TO MODEL B (challenger 1.0.1)", "rsi_14",
                 "What the figures and recommendations mean"):  # fmt: skip
        assert text in page
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_monitor_report_without_history_is_refused(tmp_path, store_path):
    result = cli("--store", store_path, "monitor", "report", "--out", str(tmp_path / "r.html"))
    assert result.exit_code == 2
    assert "no monitoring history" in result.stderr


def test_history_monitoring_shows_imported_seed_lines_too(store_path):
    store = LocalStore(store_path)
    seed_line = {"timestamp": "2026-01-08T22:03:39.666322", "monitoring_date": "2026-01-08",
                 "drift": {"model_a_drift_pct": 0.0}, "comparison": {"winner": "Model A",
                 "model_b_win_rate": 0.0}, "recommendation": "USE MODEL A (90%)"}  # fmt: skip
    # and one of ours for an improvement: accuracy 6.4% better than its baseline
    ours = {"timestamp": "2026-12-02T06:00:00.000000Z", "model": "etfs/SMH", "action": "keep",
            "drift": {"model_a_drift_pct": 0.0, "drift_pct": -6.365}}  # fmt: skip
    store.put(MONITORING_HISTORY_KEY, b"".join(json.dumps(r).encode() + b"\n"
                                               for r in (seed_line, ours)))  # fmt: skip
    shown = cli("--store", store_path, "history", "monitoring").stdout.splitlines()
    assert "USE MODEL A (90%)" in shown[0] and "2026-01-08" in shown[0]
    # Then drift has one sign: ours says better, the seed's clipped 0 says not worse
    assert "drift 0.0% (not worse)" in shown[0]
    assert "drift -6.4% (better)" in shown[1]


def test_a_regressor_s_baseline_has_rmse_mae_and_r2(tmp_path, store_path):
    # Given seed 003's kind of model (a stacked regressor) and a reference with a value column
    bundle = families()["stack_regressor"].bundle("vol/SPY")
    names = bundle.metadata.used_features
    rng = np.random.default_rng(8)
    x = rng.normal(size=(600, len(names)))
    predicted = LoadedModel(bundle.metadata, bundle.files).predict_values(x)
    truth = predicted + rng.normal(scale=0.3, size=600)
    ref = tmp_path / "ref.csv"
    with ref.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*names, "value"])
        writer.writerows([*row.tolist(), float(t)] for row, t in zip(x, truth, strict=True))
    # When published with it
    out = cli_json("--store", store_path, "publish", str(native_folder(tmp_path / "m", bundle)),
                   "--model", "vol/SPY", "--reference", str(ref))  # fmt: skip
    # Then its metrics are the regression ones, computed from the model's own predictions
    errors = predicted - truth
    metrics = out["baseline"]["metrics"]
    assert metrics["rmse"] == pytest.approx(np.sqrt(np.mean(errors**2)))
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(errors)))
    r2 = 1 - np.sum(errors**2) / np.sum((truth - truth.mean()) ** 2)
    assert metrics["r2"] == pytest.approx(r2)
    assert out["baseline"]["task"] == "regression"


# -- networks: drift on each window's newest row, PSI of a policy's actions ---------------------
def served_records(store_path: str, tmp_path: Path, bodies: list[dict]) -> list[dict]:
    """What the function captures answering ``bodies``, dated over the run's week."""
    sink = ListSink()
    settings = Settings(store_path=store_path, cache_dir=str(tmp_path / "serve-cache"))
    api = Api(ModelService(settings), capture=Capture(sink))
    for body in bodies:
        assert "error" not in api.handle(body, None)
    records = [json.loads(line) for line in sink.lines]
    for i, record in enumerate(records):
        record["time"] = stamp(DAY0 + timedelta(days=i % 7), i * 31)
    return records


def csv_of(path: Path, columns: dict[str, np.ndarray]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(columns))
        writer.writerows(zip(*(np.round(v, 6).tolist() for v in columns.values()), strict=True))
    return path


def test_a_gru_is_monitored_on_its_windows_newest_rows_and_its_outcomes(tmp_path, store_path):
    # Given seed 001's GRU published with a reference table of rows in time order
    network = networks()["gru"]
    rng = np.random.default_rng(21)
    reference = rng.normal(scale=4, size=(600, len(FEATURES)))
    ref = csv_of(
        tmp_path / "ref.csv",
        {
            **{n: reference[:, i] for i, n in enumerate(FEATURES)},
            "value": rng.normal(scale=0.1, size=600),
        },
    )
    out = cli_json(
        "--store",
        store_path,
        "publish",
        str(network.folder),
        "--model",
        "n/gru",
        "--asset-class",
        "stock",
        "--alias",
        "production",
        "--route",
        "BTCEUR",
        "--reference",
        str(ref),
    )
    # Then the baseline scored every window of 8 rows, its features those windows' newest rows
    assert out["baseline"]["rows"] == 600 - 7 and out["baseline"]["features"] == 5
    # When it serves windows whose newest rows have one feature far from the reference
    used = network.converted.bundle.metadata.used_features
    bodies = []
    for i in range(700):
        window = rng.normal(scale=4, size=(8, 5))
        window[-1, 1] += 12.0  # f2, the second used feature, moved
        rows = [dict(zip(used, r.tolist(), strict=True)) for r in window]
        bodies.append({"ticker": "BTCEUR", "features": rows, "request_id": f"w-{i}"})
    records = served_records(store_path, tmp_path, bodies)
    store = LocalStore(store_path)
    write_capture(store, records)
    write_outcomes(
        store,
        [{"request_id": r["request_id"], "value": 0.0, "observed_at": r["time"]} for r in records],
        DAY0 + timedelta(days=7),
    )
    # Then the run finds that feature drifted (and only it), and judges the values on outcomes
    report = cli_json("--store", store_path, "monitor", "run", "--since", SINCE, "--until", UNTIL)
    (judged,) = [m for m in report["models"] if m["model"] == "n/gru"]
    drifted = {n for n, f in judged["feature_drift"]["features"].items() if f["level"] == "drift"}
    assert drifted == {"f2"}
    assert judged["rows"] == 700 and judged["output_drift"]["kind"] == "values"
    performance = judged["performance"]
    assert (performance["metric"], performance["scored"]) == ("rmse", 700)
    assert performance["current"] > 0 and performance["baseline"] is not None


def test_a_policy_is_monitored_on_the_psi_of_its_actions(tmp_path, store_path):
    # Given a PPO policy whose actions follow its observations (published with a reference)
    model, vecnormalize = train_ppo(6, steps=64, seed=5)
    with torch.no_grad():
        model.policy.action_net.weight *= 300.0
    folder = write_ppo_run(tmp_path / "ppo", model, vecnormalize)
    rng = np.random.default_rng(22)
    obs = rng.normal(scale=5, size=(800, 6))
    ref = csv_of(tmp_path / "ref.csv", {f"feature_{i}": obs[:, i] for i in range(6)})
    cli_json(
        "--store",
        store_path,
        "publish",
        str(folder),
        "--model",
        "n/ppo",
        "--asset-class",
        "stock",
        "--alias",
        "production",
        "--route",
        "BTCEUR",
        "--reference",
        str(ref),
    )
    # When it serves observations from elsewhere in the space
    shifted = rng.normal(scale=5, size=(700, 6)) + 25.0
    bodies = [{"ticker": "BTCEUR", "features": o.tolist()} for o in shifted]
    write_capture(LocalStore(store_path), served_records(store_path, tmp_path, bodies))
    # Then the run reports the actions' distribution moved (PSI over actions)
    report = cli_json("--store", store_path, "monitor", "run", "--since", SINCE, "--until", UNTIL)
    (judged,) = [m for m in report["models"] if m["model"] == "n/ppo"]
    assert judged["task"] == "classification"
    assert judged["output_drift"]["kind"] == "actions"
    assert judged["output_drift"]["level"] == "drift"


@pytest.mark.parametrize("output", ["text", "json"])
def test_monitor_run_shows_what_it_has_read_on_a_terminal_only(
    tmp_path, store_path, models, output: str
):
    # Given a store with a week of captured rows and outcomes
    monitored_store(tmp_path, store_path, models)
    argv = [*TICKERSERVE, "--store", store_path, "monitor", "run", "--since", SINCE,
            "--until", UNTIL, "--no-history"]  # fmt: skip
    # When the run's stderr is a terminal
    run = run_on_terminal([*argv, "--json"] if output == "json" else argv)
    assert run.code == 0, run.terminal
    if output == "json":
        # Then --json prints the report alone and the terminal sees no progress
        assert json.loads(run.stdout)["capture"]["lines"] == 2800
        assert "reading" not in run.terminal
    else:
        # Then the terminal showed the objects read (capture and outcomes) and the writing step
        assert f"reading {SINCE} .. {UNTIL}: captured rows, outcomes" in run.terminal
        assert "writing the history" in run.terminal
        assert run.stdout.startswith("monitor run ")


# Values no capture record should hold, put into every field of a real one.
NASTY = [None, True, -1, 1.7976931348623157e308, 2**63, "", "\ud800", [], [1, [2]], {},
         {"a": {"b": None}}, "9999-99-99T99"]  # fmt: skip


def test_monitor_run_reads_past_lines_it_cannot_use_and_always_reports(
    tmp_path, store_path, models
):
    # Given a monitored model, its outcomes, and beside them: the outcome line (a
    # received_at of year 1 east of UTC), and capture lines holding odd values in every field
    monitored_store(tmp_path, store_path, models)
    store = LocalStore(store_path)
    store.put("outcomes/dt=2026-12-08/poisoned.jsonl", (
        b'{"request_id": "req-0-1", "label": "IRON_CONDOR", '
        b'"received_at": "0001-01-01T00:00:00+01:00"}\n'
        b'{"request_id": "req-0-2", "value": ' + b"9" * 400 + b"}\n"
    ))  # fmt: skip
    blob = store.get(f"capture/dt={SINCE}/part-0000.jsonl.gz")
    assert blob is not None
    real = json.loads(gzip.decompress(blob.data).splitlines()[0])
    odd: list[bytes] = []
    for field in [*real, "features.rsi_14", "output.label", "output.probabilities"]:
        for value in NASTY:
            record = json.loads(json.dumps(real))
            parent, _, leaf = field.rpartition(".")
            (record[parent] if parent else record)[leaf] = value
            if field != "request_id":
                record["request_id"] = f"odd-{len(odd)}"
            odd.append(json.dumps(record).encode())
    odd += [b"{not json", b"\xff\xfe", b"[]", b'{"kind": "capture", "v": 1}']
    store.put(f"capture/dt={SINCE}/odd.jsonl", b"\n".join(odd))
    store.put(f"capture/dt={SINCE}/truncated.jsonl.gz", gzip.compress(b'{"a": 1}\n' * 99)[:20])
    # When the monitor runs
    result = cli("--store", store_path, "monitor", "run", "--since", SINCE, "--until", UNTIL,
                 "--json")  # fmt: skip
    # Then it reports every model and appends its history line
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert [m["model"] for m in report["models"]] == ["etfs/SMH"]
    assert len(read_records(store, MONITORING_HISTORY_KEY).records) == 1
    # And says what it skipped, by reason
    capture = report["capture"]
    assert set(capture["skipped_by_reason"]) == {"not_json", "not_a_record", "unreadable_object"}
    assert capture["skipped"] == sum(capture["skipped_by_reason"].values())
    assert capture["skipped_by_reason"]["not_json"] >= 3  # surrogates, bytes, broken JSON
    assert report["outcomes"]["skipped_by_reason"] == {"invalid_time": 1, "not_json": 1}


def test_monitor_run_names_the_features_the_answers_warned_about(tmp_path, store_path, models):
    # Given SMH published with a reference and served 40 rows, a quarter with rsi_14 far out
    folder = native_folder(tmp_path / "smh", models.smh)
    ref = reference_csv(tmp_path / "ref.csv", models.smh)
    cli_json("--store", store_path, "publish", str(folder), "--model", "etfs/SMH",
             "--alias", "production", "--route", "SMH", "--reference", str(ref))  # fmt: skip
    store = LocalStore(store_path)
    service = ModelService(Settings(cache_dir=str(tmp_path / "cache")), store=store)
    sink = ListSink()
    for i in range(40):
        features = dict.fromkeys(models.smh.metadata.feature_names, 0.1)
        features["rsi_14"] = 40.0 if i % 4 == 0 else 0.1
        predict(service, {"ticker": "SMH", "features": features}, capture=Capture(sink))
    write_capture(store, [{**r, "time": stamp(DAY0, i)} for i, r in enumerate(sink.records)])
    # When the day is judged
    result = cli("--store", store_path, "monitor", "run", "--since", SINCE, "--until",
                 (DAY0 + timedelta(days=1)).isoformat())  # fmt: skip
    # Then a line says how many answers warned, and about which features
    assert result.exit_code == 0, result.stderr
    assert (
        "etfs/SMH: warnings on 10 of 40 checked answers (25.0%): rsi_14 (out_of_range 10)"
        in result.stdout.splitlines()
    )
    out = cli_json("--store", store_path, "monitor", "run", "--since", SINCE, "--until",
                   (DAY0 + timedelta(days=1)).isoformat())  # fmt: skip
    assert out["models"][0]["warnings"]["features"] == {
        "rsi_14": {"out_of_range": 10, "unexpected_missing": 0}
    }


def test_monitor_run_names_the_signal_of_a_model_that_serves_a_non_default_one(
    tmp_path, store_path, models
):
    # Given SPY's strategy model and a second model on SPY's direction signal, both served
    store = LocalStore(store_path)
    serve_spy_on_two_signals(store, models.spy, tmp_path / "cache")
    day = ("--since", SINCE, "--until", (DAY0 + timedelta(days=1)).isoformat())
    # When the day is judged
    result = cli("--store", store_path, "monitor", "run", *day)
    # Then the direction model's row names its signal; the default signal's goes unsaid
    assert result.exit_code == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[2:4]}
    assert rows["etfs/SPY/direction"].startswith("etfs/SPY/direction (signal direction) ")
    assert "signal" not in rows["etfs/SPY"]
    # and the JSON and the history line carry both models' signals
    out = cli_json("--store", store_path, "monitor", "run", *day, "--no-history")
    assert {m["model"]: m["signals"] for m in out["models"]} == {
        "etfs/SPY": {"answered": {"strategy": 35}, "routed": ["strategy"]},
        "etfs/SPY/direction": {"answered": {"direction": 20}, "routed": ["direction"]},
    }
    lines = read_records(store, MONITORING_HISTORY_KEY).records
    assert [line["signals"]["routed"] for line in lines] == [["strategy"], ["direction"]]
