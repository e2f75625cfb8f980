"""Seed 003: a volatility forecaster kept as Model A and Model B in ``models/``.

```
models/
  model_90pct.pkl            Model A: {"xgb_model", "lgbm_model", "meta_model", "feature_cols"}
  model_100pct.pkl           Model B (same shape)
  latest_ensemble.pkl        a copy of Model A (not imported twice)
  validation_baseline.json   Model A's validation metrics and date ranges
  dual_model_baseline.json   both models' training windows and metrics
  training_history.jsonl     its lines kept as they are, in time order with the store's
  monitoring_history.jsonl   appended to the store's monitoring history
```

Both are regression stacks (XGBoost and LightGBM under a Ridge). The seed names no ticker:
``--model NAME`` names the model and ``--route TICKER`` routes tickers to it. Model A gets
``--alias`` (``production``), Model B the ``challenger`` alias, and shadow is turned on for
the challenger in the same registry update. The baselines become each version's metrics and
training windows (``baselines``) and its monitoring baseline (``baseline.json``, through
``monitor.baseline.from_seed_003``; with ``--reference`` also the feature and output
distributions).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tickerserve.baselines.baseline import Baseline, BaselineError, from_seed_003
from tickerserve.cli.errors import Refused
from tickerserve.cli.importers.plan import (
    Candidate,
    ImportOptions,
    ImportPlan,
    routes_from_flags,
)
from tickerserve.layout import ETF_PREFIX, validate_model_name
from tickerserve.publishing.conversion.recipe import (
    Converted,
    Recipe,
    convert_pickle,
)
from tickerserve.publishing.conversion.seed_metadata import jsonable, scalar
from tickerserve.storage.history import HISTORY_KEYS, parse_records
from tickerserve.storage.registry import ShadowSettings

LAYOUT = "003"
DESCRIPTION = "models/model_90pct.pkl (Model A) and model_100pct.pkl (Model B)"
MODEL_A, MODEL_B, LATEST = "model_90pct.pkl", "model_100pct.pkl", "latest_ensemble.pkl"
VALIDATION_BASELINE, DUAL_BASELINE = "validation_baseline.json", "dual_model_baseline.json"
CHALLENGER = "challenger"
SIGNAL = "volatility"  # what seed 003 forecasts
HISTORY_FILES = {"training": "training_history.jsonl", "monitoring": "monitoring_history.jsonl"}


def find_root(path: Path) -> Path | None:
    for root in (path, path / "models"):
        if (root / MODEL_A).is_file() or (root / MODEL_B).is_file():
            return root
    return None


def plan(root: Path, options: ImportOptions) -> ImportPlan:
    if options.model is None:
        raise Refused(
            "seed 003 names no model: give --model NAME (e.g. stocks/SPY/volatility) "
            "and --route TICKER for each ticker it answers"
        )
    model = validate_model_name(options.model)
    result = ImportPlan(LAYOUT, root)
    asset_class = "etf" if model.startswith(f"{ETF_PREFIX}/") else "stock"
    validation = _json_object(root / VALIDATION_BASELINE, result.notes)
    dual = _json_object(root / DUAL_BASELINE, result.notes)
    fields = baselines(validation, dual)
    model_a = root / MODEL_A
    if not model_a.is_file() and (root / LATEST).is_file():
        model_a = root / LATEST
        result.notes.append(f"no {MODEL_A}: {LATEST} (its copy) is imported as Model A")
    elif (root / LATEST).exists():
        result.notes.append(_latest_note(root))
    roles = ((model_a, "model_a", options.alias), (root / MODEL_B, "model_b", CHALLENGER))
    for index, (file, role, alias) in enumerate(roles):
        if not file.is_file():
            result.notes.append(f"no {file.name}: nothing for {_ROLE_NAMES[role]}")
            continue
        metrics, training = fields.get(role, ({}, {}))
        # The training run's lines in the seed's own history schema (model_a, model_b).
        record = {k: dual[k] for k in ("model_a", "model_b") if isinstance(dual.get(k), dict)}
        # Both are written by the same training run, which the baselines time-stamp.
        trained_at = str(training.get("baseline_at", ""))
        result.candidates.append(
            Candidate(
                model,
                file.name,
                _converter(file, model, asset_class, options, trained_at),
                asset_class,
                order=(index,),
                aliases=(alias,),
                origin={"file": file.name, "role": _ROLE_NAMES[role]},
                metrics=metrics,
                training=training,
                baseline=_baseline(model, role, validation, dual, trained_at),
                record=record,
            )
        )
    result.shadows[model] = ShadowSettings(CHALLENGER, 1.0)
    result.routes = routes_from_flags(options, [model], SIGNAL)
    result.histories = _histories(root, model)
    return result


_ROLE_NAMES = {"model_a": "Model A (90%)", "model_b": "Model B (all but the last 30)"}


def _latest_note(root: Path) -> str:
    latest = root / LATEST
    if latest.is_symlink():
        return f"{LATEST} is a link to {Path(latest.resolve()).name}: not imported twice"
    if (root / MODEL_A).is_file() and latest.read_bytes() == (root / MODEL_A).read_bytes():
        return f"{LATEST} is a copy of {MODEL_A}: not imported twice"
    return f"{LATEST} differs from {MODEL_A}: not imported (the seed writes it as Model A's copy)"


def _converter(
    file: Path, model: str, asset_class: str, options: ImportOptions, trained_at: str
) -> Callable[[], Converted]:
    def dated(recipe: Recipe) -> None:
        recipe.created_at = recipe.created_at or trained_at

    def run() -> Converted:
        return convert_pickle(
            file, model=model, asset_class=asset_class, fallback_names=options.features,
            label=file.name, adjust=dated,
        )  # fmt: skip

    return run


# -- baselines -----------------------------------------------------------------------------
def _baseline(
    model: str, role: str, validation: dict[str, Any], dual: dict[str, Any], trained_at: str
) -> Callable[[Baseline | None], Baseline | None]:
    """The version's monitoring baseline: the seed's metrics and windows for Model A (from
    both files) or Model B (its held-out test), with the distributions fitted from
    ``--reference`` when given. None when the seed's files hold nothing for it."""

    def build(fitted: Baseline | None) -> Baseline | None:
        try:
            return from_seed_003(
                model, "0.0.0", role[-1], validation, dual, reference=fitted,
                created_at=trained_at,
            )  # fmt: skip
        except BaselineError:  # no baseline files: only what --reference gave, if anything
            return fitted

    return build


def baselines(
    validation: dict[str, Any], dual: dict[str, Any]
) -> dict[str, tuple[dict[str, float], dict[str, Any]]]:
    """Model A's and Model B's validation metrics and training windows from
    ``validation_baseline.json`` and ``dual_model_baseline.json``, as version metadata."""
    a_metrics: dict[str, float] = {}
    a_training: dict[str, Any] = {}
    dates = _section(validation, "date_range")
    _numbers(validation, ("validation_rmse", "validation_mae", "validation_r2"), a_metrics)
    _copy(dates, {"train_start": "start", "train_end": "end", "val_start": "validation_start",
                  "val_end": "validation_end"}, a_training)  # fmt: skip
    _copy(validation, {"train_val_split": "train_val_split", "timestamp": "baseline_at"},
          a_training)  # fmt: skip
    a, b = _section(dual, "model_a"), _section(dual, "model_b")
    _numbers(a, ("validation_rmse", "validation_mae", "validation_r2"), a_metrics)
    _copy(a, {"training_date_start": "start", "training_date_end": "end",
              "training_samples": "rows", "validation_samples": "validation_rows"},
          a_training)  # fmt: skip
    b_metrics: dict[str, float] = {}
    b_training: dict[str, Any] = {}
    _numbers(b, ("test_rmse", "test_mae", "test_r2"), b_metrics)
    _copy(b, {"training_date_start": "start", "training_date_end": "end",
              "training_samples": "rows", "test_date_start": "test_start",
              "test_date_end": "test_end", "test_samples": "test_rows", "note": "note"},
          b_training)  # fmt: skip
    if "timestamp" in dual and scalar(dual["timestamp"]):
        b_training.setdefault("baseline_at", jsonable(dual["timestamp"]))
    return {"model_a": (a_metrics, a_training), "model_b": (b_metrics, b_training)}


def _json_object(file: Path, notes: list[str]) -> dict[str, Any]:
    if not file.is_file():
        return {}
    try:
        raw = json.loads(file.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        notes.append(f"{file.name} is not valid JSON ({type(exc).__name__}): not used")
        return {}
    if not isinstance(raw, dict):
        notes.append(f"{file.name} is not a JSON object: not used")
        return {}
    return raw


def _section(src: dict[str, Any], key: str) -> dict[str, Any]:
    value = src.get(key)
    return value if isinstance(value, dict) else {}


def _numbers(src: dict[str, Any], keys: tuple[str, ...], out: dict[str, float]) -> None:
    for key in keys:
        value = src.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and scalar(value):
            out[key] = float(value)


def _copy(src: dict[str, Any], names: dict[str, str], out: dict[str, Any]) -> None:
    for key, name in names.items():
        value = src.get(key)
        if value is not None and scalar(value):
            out.setdefault(name, jsonable(value))


def _histories(root: Path, model: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for kind, name in HISTORY_FILES.items():
        file = root / name
        if kind not in HISTORY_KEYS or not file.is_file():
            continue
        log = parse_records(file.read_bytes())
        if log.malformed:
            raise Refused(f"{file}: {log.malformed} line(s) are not JSON objects")
        # Training lines stay exactly as the seed wrote them (its analysis reads them);
        # monitoring lines name the model, as tickerserve's own monitoring lines do.
        found[kind] = (
            log.records
            if kind == "training"
            else [{**r, "imported_from": "seed", "model": model} for r in log.records]
        )
    return found
