"""``tickerserve baseline MODEL@VERSION --reference FILE``: a version that exists gets a
monitoring baseline fitted from a reference sample, stored beside it with its sha256 in the
model's digest index; what it says, and what it refuses (no reference, bad windows, a version
published with one, a second one without --replace) with nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.cli_support import cli_json, refused, ts, write_csv
from tests.support import REGISTRY_KEY, DemoModels
from tickerserve.baselines.baseline import Baseline, Window
from tickerserve.baselines.persistence import attach_to_bundle
from tickerserve.baselines.ranges import Ranges
from tickerserve.cli.baseline import describe, summary
from tickerserve.cli.reference import fit_from_reference
from tickerserve.layout import baseline_sidecar_key, ranges_sidecar_key
from tickerserve.publishing.release import publish_bundle
from tickerserve.storage.store import LocalStore, sha256_hex
from tickerserve.storage.version_index import read_index


def reference(tmp_path: Path, models: DemoModels, *, labels: bool = True) -> Path:
    meta = models.smh.metadata
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, len(meta.used_features)))
    columns = {n: x[:, j].round(5).tolist() for j, n in enumerate(meta.used_features)}
    if labels:
        columns["label"] = [meta.classes[i] for i in rng.integers(0, len(meta.classes), 200)]
    return write_csv(tmp_path / "ref.csv", columns)


def published(tmp_path: Path, models: DemoModels) -> str:
    store = tmp_path / "store"
    publish_bundle(LocalStore(store), models.smh, registry_key=REGISTRY_KEY)
    return str(store)


def test_the_baseline_is_stored_beside_the_version_with_its_digest_recorded(tmp_path, models):
    store = published(tmp_path, models)
    ref = reference(tmp_path, models)
    out = cli_json("--store", store, "baseline", "etfs/SMH@1.0.0", "--reference", str(ref),
                   "--bins", "5", "--training-window", "2020-01-02:2024-12-31",
                   "--validation-window", "2025-01-01:2025-06-30")  # fmt: skip
    assert out["key"] == baseline_sidecar_key("etfs/SMH", "1.0.0")
    assert out["sha256"] == sha256_hex((Path(store) / out["key"]).read_bytes())
    recorded = read_index(LocalStore(store), "etfs/SMH").index.versions["1.0.0"].sidecars
    # its feature ranges beside the version, where the prediction function reads them
    assert out["ranges_key"] == ranges_sidecar_key("etfs/SMH", "1.0.0")
    ranges = Ranges.from_json((Path(store) / out["ranges_key"]).read_bytes())
    assert list(ranges.features) == models.smh.metadata.used_features
    assert recorded == {
        "baseline.json": out["sha256"],
        "ranges.json": sha256_hex((Path(store) / out["ranges_key"]).read_bytes()),
    }
    assert (out["rows"], out["features"], out["bins"], out["task"]) == (200, 6, 5, "classification")
    assert out["training"] == {"start": "2020-01-02", "end": "2024-12-31", "samples": None}
    assert set(out["metrics"]) == {"accuracy", "macro_f1", "log_loss"}


def test_the_text_output_says_what_was_fitted_and_where_it_went(tmp_path, models):
    store = published(tmp_path, models)
    result = ts(store, "baseline", "etfs/SMH", "--reference", str(reference(tmp_path, models,
                labels=False)))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    first, second, third = result.stdout.splitlines()
    assert first == (
        "baseline of etfs/SMH 1.0.0: 200 reference rows, 6 features x 10 bins; no labels: no "
        "metrics"
    )
    assert second.startswith("stored etfs/SMH/baselines/1.0.0.json (sha256 ")
    assert second.endswith("…, recorded in etfs/SMH/versions/index.json)")
    assert third == (
        "stored etfs/SMH/versions/1.0.0.ranges.json: each feature's range (the reference's "
        "0.001 and 0.999 quantiles); answers warn about values outside it from the function's "
        "next load of the version"
    )


def test_the_range_quantiles_are_an_option_checked_before_anything_is_written(tmp_path, models):
    store = published(tmp_path, models)
    ref = str(reference(tmp_path, models))
    before = sorted(o.key for o in LocalStore(store).list(""))
    refused(
        ts(store, "baseline", "etfs/SMH", "--reference", ref, "--range-quantiles", "0.9:0.1"),
        "--range-quantiles quantiles must satisfy 0 <= lo < hi <= 1, got 0.9, 0.1",
    )
    assert sorted(o.key for o in LocalStore(store).list("")) == before
    out = cli_json("--store", store, "baseline", "etfs/SMH", "--reference", ref,
                   "--range-quantiles", "0.05:0.95")  # fmt: skip
    assert out["range_quantiles"] == [0.05, 0.95]
    ranges = Ranges.from_json((Path(store) / out["ranges_key"]).read_bytes())
    rsi = np.loadtxt(ref, delimiter=",", skiprows=1, usecols=0)  # rsi_14, the first column
    assert ranges.features["rsi_14"].to_list()[:2] == pytest.approx(
        np.quantile(rsi, [0.05, 0.95]).tolist()
    )


def test_refusals_write_nothing(tmp_path, models):
    store = published(tmp_path, models)
    ref = str(reference(tmp_path, models))
    before = sorted(o.key for o in LocalStore(store).list(""))
    refused(ts(store, "baseline", "etfs/SMH@1.0.0"), "--reference FILE is required")
    refused(
        ts(store, "baseline", "etfs/SMH@1.0.0", "--reference", ref, "--training-window", "2020"),
        "--training-window '2020': expected START:END as ISO dates",
    )
    refused(
        ts(store, "baseline", "etfs/SMH@9.9.9", "--reference", ref),
        "etfs/SMH 9.9.9 does not exist",
    )
    assert sorted(o.key for o in LocalStore(store).list("")) == before


def test_a_version_published_with_a_baseline_keeps_it(tmp_path, models):
    store = tmp_path / "store"
    ref = reference(tmp_path, models)
    fitted = fit_from_reference(models.smh, ref)
    publish_bundle(LocalStore(store), attach_to_bundle(models.smh, fitted),
                   registry_key=REGISTRY_KEY)  # fmt: skip
    refused(
        ts(str(store), "baseline", "etfs/SMH@1.0.0", "--reference", str(ref), "--replace"),
        "etfs/SMH 1.0.0 was published with a baseline; it cannot be replaced",
    )


def test_summary_and_description_of_a_baseline():
    baseline = Baseline(
        "etfs/SMH", "1.0.2", "regression", metrics={"rmse": 0.0123, "r2": 0.4},
        training=Window("2020-01-02", "2024-12-31", 900), rows=300, bins=8,
    )  # fmt: skip
    assert summary(baseline) == {
        "model": "etfs/SMH", "version": "1.0.2", "task": "regression", "rows": 300,
        "features": 0, "bins": 8, "range_quantiles": None, "metrics": {"rmse": 0.0123, "r2": 0.4},
        "training": {"start": "2020-01-02", "end": "2024-12-31", "samples": 900},
        "validation": {"start": None, "end": None, "samples": None},
    }  # fmt: skip
    assert describe(baseline) == (
        "baseline of etfs/SMH 1.0.2: 300 reference rows, 0 features x 8 bins; r2=0.4 rmse=0.0123"
    )
