"""The functions' code assets: the modules each handler reaches, and their bytecode.

Each asset is built from an explicit include list (``PREDICTION_FILES``, ``MONITOR_FILES``):
a new module ships only when a list names it, and ``tests/infra/test_function_asset.py``
fails when a list misses a module its handler imports or names one it never reaches.

Staged under ``build/function/<key>/code`` (the key hashes the included sources, the
recipe and whether bytecode was compiled), so synthesizing again reuses the build. The
CDK asset hash is the fingerprint of that folder: paths and contents only, which the
deterministic bytecode keeps the same on every machine with the runtime's Python.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from infra.build_cache import building, prune
from infra.bytecode import RUNTIME_PYTHON, compile_tree, fix_mtimes

ROOT = Path(__file__).resolve().parent.parent
CODE_ROOT = ROOT / "lambda_src"
CACHE_ROOT = ROOT / "build" / "function"
# Where Lambda unpacks a function's code: the source path its bytecode records.
TASK_ROOT = "/var/task"
# Bump when staging changes in a way that alters the output.
RECIPE = "2"
_PACKAGE_BASE = (
    "tickerserve/__init__.py",
    "tickerserve/contract.json",
    "tickerserve/contract.py",
    "tickerserve/errors.py",
    "tickerserve/layout.json",
    "tickerserve/layout.py",
    "tickerserve/metric_names.json",
    "tickerserve/metric_names.py",
    "tickerserve/settings.py",
)
_MEMBERS = (
    "tickerserve/members/__init__.py",
    "tickerserve/members/forest.py",
    "tickerserve/members/graph_prefix.py",
    "tickerserve/members/kinds.py",
    "tickerserve/members/leaf_sum.py",
    "tickerserve/members/lightgbm.py",
    "tickerserve/members/linear.py",
    "tickerserve/members/links.py",
    "tickerserve/members/loading.py",
    "tickerserve/members/network.py",
    "tickerserve/members/onnx.py",
    "tickerserve/members/onnx_engine.py",
    "tickerserve/members/onnx_proto.py",
    "tickerserve/members/preprocessing.py",
    "tickerserve/members/row_split.py",
    "tickerserve/members/safe_load.py",
    "tickerserve/members/tree_engines.py",
    "tickerserve/members/tree_graphs.py",
    "tickerserve/members/tree_shap.py",
    "tickerserve/members/treelite.py",
    "tickerserve/members/treelite_api.py",
    "tickerserve/members/treelite_forest.py",
    "tickerserve/members/xgboost_api.py",
)
_STORAGE = (
    "tickerserve/storage/__init__.py",
    "tickerserve/storage/bundle.py",
    "tickerserve/storage/compare_and_swap.py",
    "tickerserve/storage/deadline.py",
    "tickerserve/storage/outcomes.py",
    "tickerserve/storage/registry.py",
    "tickerserve/storage/store.py",
    "tickerserve/storage/version_index.py",
)
# The prediction function: the HTTP layer over serving, storage and the member kinds.
PREDICTION_FILES = (
    *_PACKAGE_BASE,
    *_MEMBERS,
    *_STORAGE,
    # Feature ranges (request warnings): read with a version, never the baselines themselves.
    "tickerserve/baselines/__init__.py",
    "tickerserve/baselines/ranges.py",
    "tickerserve/handler.py",
    "tickerserve/http/__init__.py",
    "tickerserve/http/api.py",
    "tickerserve/http/bodies.py",
    "tickerserve/http/events.py",
    "tickerserve/http/openapi.py",
    "tickerserve/http/pagination.py",
    "tickerserve/http/proxy.py",
    "tickerserve/http/resolvers.py",
    "tickerserve/http/routes.py",
    "tickerserve/http/views.py",
    "tickerserve/serving/__init__.py",
    "tickerserve/serving/cache.py",
    "tickerserve/serving/capture.py",
    "tickerserve/serving/explanations.py",
    "tickerserve/serving/features.py",
    "tickerserve/serving/model.py",
    "tickerserve/serving/guard.py",
    "tickerserve/serving/network_answers.py",
    "tickerserve/serving/observability.py",
    "tickerserve/serving/pipeline.py",
    "tickerserve/serving/predict.py",
    "tickerserve/serving/request_ids.py",
    "tickerserve/serving/service.py",
    "tickerserve/serving/snapstart.py",
    "tickerserve/serving/traffic.py",
    "tickerserve/serving/windows.py",
)
# The monitor function: monitor runs, promotion (which loads a version as serving does, so
# the member kinds and the model), baselines and storage; no HTTP layer, no pickle loader.
MONITOR_FILES = (
    *_PACKAGE_BASE,
    *_MEMBERS,
    *_STORAGE,
    "tickerserve/storage/history.py",
    "tickerserve/baselines/__init__.py",
    "tickerserve/baselines/baseline.py",
    "tickerserve/baselines/calibration.py",
    "tickerserve/baselines/metrics.py",
    "tickerserve/baselines/moments.py",
    "tickerserve/baselines/persistence.py",
    "tickerserve/baselines/ranges.py",
    "tickerserve/serving/__init__.py",
    "tickerserve/serving/features.py",
    "tickerserve/serving/guard.py",
    "tickerserve/serving/model.py",
    "tickerserve/serving/windows.py",
    "tickerserve/publishing/__init__.py",
    "tickerserve/publishing/promotion.py",
    "tickerserve/publishing/release.py",
    "tickerserve/publishing/version_folders.py",
    "tickerserve/monitor/__init__.py",
    "tickerserve/monitor/capture_reader.py",
    "tickerserve/monitor/cloudwatch.py",
    "tickerserve/monitor/config.json",
    "tickerserve/monitor/config.py",
    "tickerserve/monitor/distributions.py",
    "tickerserve/monitor/drift_statistics.py",
    "tickerserve/monitor/evaluate.py",
    "tickerserve/monitor/handler.py",
    "tickerserve/monitor/model_stream.py",
    "tickerserve/monitor/monitoring_history.py",
    "tickerserve/monitor/outcome_join.py",
    "tickerserve/monitor/performance_estimate.py",
    "tickerserve/monitor/recommendation.py",
    "tickerserve/monitor/report.py",
    "tickerserve/monitor/run.py",
    "tickerserve/monitor/sampling_salt.py",
    "tickerserve/monitor/significance.py",
    "tickerserve/monitor/streaks.py",
)
# Finished builds kept, for both functions' assets (switching branches or editing should not
# pile up folders).
KEEP_BUILDS = 6
STAGING_PREFIX = ".staging-"


@dataclass(frozen=True)
class FunctionAsset:
    """A staged function asset: the folder to hand to ``Code.from_asset``."""

    path: Path
    bytecode: bool


def stage_function_code(
    source: Path,
    include: Sequence[str],
    *,
    python: Path | None,
    cache_root: Path = CACHE_ROOT,
) -> FunctionAsset:
    """Copy the ``include`` files of ``source`` and compile them with ``python`` (a
    runtime-version interpreter; None ships sources only). Returns the cached build when
    nothing changed."""
    files = sorted(included_files(source, include))
    key = _key(source, files, bytecode=python is not None)
    target = cache_root / key
    if target.is_dir():
        return FunctionAsset(target / "code", python is not None)
    with building(target, STAGING_PREFIX) as work:
        code = work / "code"
        for relative in files:
            destination = code / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / relative, destination)
        if python is not None:
            compile_tree(python, code, TASK_ROOT)
        fix_mtimes(code)
        work.chmod(0o755)
    finished = [p for p in cache_root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    prune(
        ((p, p.stat().st_mtime) for p in finished),
        KEEP_BUILDS,
        cache_root.glob(f"{STAGING_PREFIX}*"),
    )
    return FunctionAsset(target / "code", python is not None)


def included_files(source: Path, include: Sequence[str]) -> list[PurePosixPath]:
    """The ``include`` paths (relative to ``source``), each checked to exist: a list naming a
    module that moved or was deleted fails the build instead of shipping without it."""
    missing = [name for name in include if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(f"function asset lists files that do not exist: {missing}")
    return sorted({PurePosixPath(name) for name in include})


def _key(source: Path, files: Sequence[PurePosixPath], *, bytecode: bool) -> str:
    digest = hashlib.sha256(f"{RECIPE}\0{RUNTIME_PYTHON if bytecode else 'no-pyc'}".encode())
    for relative in files:
        content = hashlib.sha256((source / relative).read_bytes()).hexdigest()
        digest.update(f"\0{relative}\0{content}".encode())
    return digest.hexdigest()[:20]
