"""The benchmark's model set, trained once and cached as seed-style artifacts, then published
twice into one bucket: seed layout (``{model}/production/``: joblib ``LGBMClassifier``, pickled
``LabelEncoder``, ``feature_names.json``) and tickerserve bundles converted from the very same
boosters (``clf.booster_`` -> ``model.txt``, class labels from the encoder).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT, say

CACHE_ROOT = ROOT / "build" / "bench-cache"
SEED_FILES = ("model.joblib", "label_encoder.pkl", "feature_names.json")
PRODUCTION = "production"

# 50 ETFs with their own (large) model; SMH keeps the 12-feature shape of tests/events.
LARGE_ETFS: tuple[str, ...] = (
    "SPY",
    "QQQ",
    "IWM",
    "DIA",
    "XLF",
    "XLK",
    "XLE",
    "XLV",
    "XLI",
    "XLY",
    "XLP",
    "XLU",
    "XLB",
    "XLRE",
    "XLC",
    "VTI",
    "VOO",
    "VEA",
    "VWO",
    "EFA",
    "EEM",
    "AGG",
    "BND",
    "TLT",
    "IEF",
    "HYG",
    "LQD",
    "GLD",
    "SLV",
    "USO",
    "UNG",
    "GDX",
    "GDXJ",
    "XBI",
    "IBB",
    "KRE",
    "KBE",
    "XOP",
    "XME",
    "XRT",
    "ITB",
    "IYR",
    "VNQ",
    "ARKK",
    "SOXX",
    "TAN",
    "ICLN",
    "EWZ",
    "FXI",
    "EWJ",
)
SMALL_ETF = "SMH"
STOCKS = ("AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOGL", "META", "JPM")
UNIVERSAL = "stocks/universal"


@dataclass(frozen=True)
class ModelSpec:
    """One model to train: its folder name, data shape and LightGBM size."""

    name: str
    seed: int
    n_features: int
    n_classes: int
    rows: int
    rounds: int
    num_leaves: int


def feature_names(n_features: int) -> list[str]:
    """The demo names (12 real-looking features), extended as ``{name}_{i}`` beyond 12."""
    from tickerserve.publishing.demo import FEATURES

    return [
        FEATURES[i] if i < len(FEATURES) else f"{FEATURES[i % len(FEATURES)]}_{i}"
        for i in range(n_features)
    ]


def model_specs(*, large_rounds: int = 100, small_rounds: int = 30) -> list[ModelSpec]:
    """SMH (12 features, small), 50 large ETF models and the large universal stock model."""
    large = {"n_features": 36, "n_classes": 5, "rows": 1000, "num_leaves": 31}
    specs = [ModelSpec(f"etfs/{SMALL_ETF}", 7, 12, 5, 1000, small_rounds, 31)]
    specs += [
        ModelSpec(f"etfs/{t}", 100 + i, rounds=large_rounds, **large)
        for i, t in enumerate(LARGE_ETFS)
    ]
    specs.append(ModelSpec(UNIVERSAL, 99, rounds=large_rounds, **large))
    return specs


def ticker_model(ticker: str) -> str:
    return f"etfs/{ticker}" if ticker == SMALL_ETF or ticker in LARGE_ETFS else UNIVERSAL


def _cache_dir(specs: list[ModelSpec]) -> Path:
    from importlib.metadata import version

    key = json.dumps(
        [[asdict(s) for s in specs], version("lightgbm"), version("scikit-learn"), 1],
        sort_keys=True,
    )
    return CACHE_ROOT / f"models-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def train_seed_model(spec: ModelSpec, out_dir: str) -> str:
    """Train one ``LGBMClassifier`` the way the seeds did and dump its seed-style artifacts."""
    import joblib
    import numpy as np
    from lightgbm import LGBMClassifier
    from sklearn.preprocessing import LabelEncoder

    from tickerserve.publishing.demo import STRATEGIES, training_data

    x, y = training_data(spec.seed, spec.rows, spec.n_features, spec.n_classes)
    labels = np.asarray(STRATEGIES[: spec.n_classes])[y]
    encoder = LabelEncoder().fit(labels)
    clf = LGBMClassifier(
        n_estimators=spec.rounds,
        num_leaves=spec.num_leaves,
        learning_rate=0.1,
        n_jobs=1,
        deterministic=True,
        random_state=spec.seed,
        verbose=-1,
    )
    clf.fit(x, encoder.transform(labels))
    target = Path(out_dir) / spec.name / PRODUCTION
    target.mkdir(parents=True, exist_ok=True)
    joblib.dump(clf, target / "model.joblib")
    with open(target / "label_encoder.pkl", "wb") as handle:
        pickle.dump(encoder, handle)
    (target / "feature_names.json").write_text(json.dumps(feature_names(spec.n_features)))
    return spec.name


def ensure_models(specs: list[ModelSpec], *, rebuild: bool = False) -> Path:
    """The cached seed-style artifacts for ``specs``, training what is missing (in parallel,
    one process per usable CPU, single-threaded LightGBM each)."""
    root = _cache_dir(specs)
    if rebuild and root.exists():
        shutil.rmtree(root)
    done = root / "complete.json"
    if done.exists():
        say(f"models: cached in {root.relative_to(ROOT)}")
        return root
    todo = [s for s in specs if not (root / s.name / PRODUCTION / "feature_names.json").exists()]
    workers = max(1, min(len(os.sched_getaffinity(0)), 4))
    say(f"models: training {len(todo)} LGBMClassifiers with {workers} worker(s) (cached after)...")
    started = time.monotonic()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for i, _ in enumerate(pool.map(train_seed_model, todo, [str(root)] * len(todo)), 1):
            if i % 10 == 0 or i == len(todo):
                say(f"  {i}/{len(todo)}")
    done.write_text(json.dumps([asdict(s) for s in specs], indent=1))
    say(
        f"models: trained in {time.monotonic() - started:.0f} s, cached in {root.relative_to(ROOT)}"
    )
    return root


def publish_all(
    root: Path, specs: list[ModelSpec], bucket: str, endpoint: str, *, create: bool = True
) -> dict[str, Any]:
    """Upload the seed artifacts and publish equivalent tickerserve bundles (into a new
    bucket, or with ``create`` False an existing one); returns sizes."""
    import boto3
    import joblib

    from tickerserve.layout import DEFAULT_REGISTRY_KEY
    from tickerserve.publishing.demo import booster_bundle
    from tickerserve.publishing.release import publish_bundle
    from tickerserve.storage.store import S3Store

    client = boto3.client("s3", endpoint_url=endpoint)
    if create:
        client.create_bucket(Bucket=bucket)
    store = S3Store(bucket, client=client)
    sizes: dict[str, Any] = {"seed": {}, "native": {}}
    for spec in specs:
        folder = root / spec.name / PRODUCTION
        for name in SEED_FILES:
            data = (folder / name).read_bytes()
            client.put_object(Bucket=bucket, Key=f"{spec.name}/{PRODUCTION}/{name}", Body=data)
            sizes["seed"][spec.name] = sizes["seed"].get(spec.name, 0) + len(data)
        clf = joblib.load(folder / "model.joblib")
        with open(folder / "label_encoder.pkl", "rb") as handle:
            encoder = pickle.load(handle)
        names = json.loads((folder / "feature_names.json").read_text())
        asset_class = "stock" if spec.name == UNIVERSAL else "etf"
        bundle = booster_bundle(
            spec.name,
            "1.0.0",
            [clf.booster_],
            feature_names=names,
            classes=[str(c) for c in encoder.classes_],
            asset_class=asset_class,
            hyperparameters={"num_boost_round": spec.rounds, "num_leaves": spec.num_leaves},
        )
        if spec.name == UNIVERSAL:
            routes = dict.fromkeys(STOCKS, "stock")
        else:
            routes = {spec.name.split("/", 1)[1]: "etf"}
        publish_bundle(store, bundle, registry_key=DEFAULT_REGISTRY_KEY, routes=routes)
        sizes["native"][spec.name] = bundle.metadata.artifact_bytes
    return sizes
