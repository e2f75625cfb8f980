"""Section 3b: the handler under the Lambda runtime's Python, from the synthesized assets.

The function asset exactly as ``cdk synth`` stages it (``infra.function_asset``) and the
dependency layer (``infra.bundling``), run by CPython 3.13 with ``-S -s -B`` and nothing else on
``sys.path``; each sample a fresh process with a fresh /tmp cache. The first request reads a
local folder copy of the benchmark bucket's registry and model (the layer has no botocore:
Lambda's runtime provides it), so this section times import and model load, not S3.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import ROOT, median, ms, say, table
from infra.bundling import LayerSpec, build_layer
from infra.bytecode import RUNTIME_PYTHON, find_python
from infra.function_asset import CODE_ROOT, PREDICTION_FILES, stage_function_code

AS_DEPLOYED = "as deployed (function + layer bytecode)"
# Packages whose import time the breakdown names (cumulative, from one -X importtime run).
_BREAKDOWN = ("numpy", "aws_lambda_powertools", "aws_lambda_powertools.event_handler")


def runtime_section(
    samples: int, work: Path, store: Path, event: dict[str, Any]
) -> dict[str, Any] | None:
    """Median interpreter start, handler import and first answer per variant, or None when
    the runtime's Python is not installed."""
    python = find_python(RUNTIME_PYTHON)
    if python is None:
        say(f"\n3b. skipped: Python {RUNTIME_PYTHON} (the Lambda runtime's) is not installed")
        return None
    layer = build_layer(LayerSpec.for_architecture("x86_64"))
    shipped = stage_function_code(CODE_ROOT, PREDICTION_FILES, python=python).path
    sources = stage_function_code(
        CODE_ROOT, PREDICTION_FILES, python=None, cache_root=work / "function-sources"
    ).path
    no_bytecode = work / "empty-pycache"  # a pycache prefix with nothing in it: every .pyc unseen
    no_bytecode.mkdir(exist_ok=True)
    variants = [
        (AS_DEPLOYED, shipped, {}),
        ("function asset without .pyc (before)", sources, {}),
        ("no bytecode at all (no 3.13 at build)", shipped, {"PYTHONPYCACHEPREFIX": no_bytecode}),
    ]
    spec = work / "runtime-event.json"
    spec.write_text(json.dumps({"events": [event]}))
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in variants}
    for _ in range(samples):
        for name, code, extra in variants:
            results[name].append(_child(python, layer, code, store, spec, work, extra))
    rows = []
    for name, _, _ in variants:
        runs = results[name]
        rows.append(
            [
                name,
                ms(median([r["t_main"] - r["t_spawn"] for r in runs])),
                ms(median([r["import_ns"] for r in runs])),
                ms(median([r["import_cpu_ns"] for r in runs])),
                ms(median([r["first_request_ns"] for r in runs])),
                ms(median([r["t_answered"] - r["t_spawn"] for r in runs])),
            ]
        )
    say()
    say(
        table(
            f"3b. The synthesized function asset and its layer under Python {RUNTIME_PYTHON} "
            f"(median of {samples}; ms; local folder store; POST /predict, large model)",
            [
                "variant",
                "interpreter",
                "import handler",
                "(its CPU time)",
                "first request",
                "spawn -> answer",
            ],
            rows,
        )
    )
    breakdown = _import_breakdown(python, layer, shipped, store, work)
    say(
        "   first request = registry, metadata and model.txt from the folder, sha256, the "
        "LightGBM C library and the\n   model loaded, the prediction. Largest imports of the "
        "handler as deployed (one -X importtime run, ms):\n   "
        + ", ".join(f"{name} {value:.0f}" for name, value in breakdown)
    )
    return {
        name: {
            "import": median([r["import_ns"] for r in runs]),
            "import_cpu": median([r["import_cpu_ns"] for r in runs]),
        }
        for name, runs in results.items()
    }


def _env(layer: Path, code: Path, store: Path, cache: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{layer / 'python'}:{code}:{ROOT}",
        "LD_LIBRARY_PATH": str(layer / "lib"),
        "TICKERSERVE_STORE_PATH": str(store),
        "TICKERSERVE_CACHE_DIR": str(cache),
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "Tickerserve",
    }


def _child(
    python: Path,
    layer: Path,
    code: Path,
    store: Path,
    spec: Path,
    work: Path,
    extra: dict[str, Any],
) -> dict[str, Any]:
    cache = Path(tempfile.mkdtemp(prefix="rt-", dir=work))
    result = cache / "result.json"
    env = {**_env(layer, code, store, cache / "tmp"), **{k: str(v) for k, v in extra.items()}}
    argv = [str(python), "-S", "-s", "-B", "-m", "bench.child", "tickerserve", "cold"]
    t_spawn = time.monotonic_ns()
    proc = subprocess.run(
        [*argv, str(spec), str(result)],
        env=env,
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not result.exists():
        raise RuntimeError(f"Python {RUNTIME_PYTHON} child failed:\n{proc.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(result.read_text())
    if data["status"] != 200:
        raise RuntimeError(f"Python {RUNTIME_PYTHON} child answered {data}")
    data["t_spawn"] = t_spawn
    return data


def _import_breakdown(
    python: Path, layer: Path, code: Path, store: Path, work: Path
) -> list[tuple[str, float]]:
    """Cumulative ms of the big third-party imports, and tickerserve's own modules' self time."""
    env = _env(layer, code, store, work / "importtime-cache")
    proc = subprocess.run(
        [str(python), "-S", "-s", "-B", "-X", "importtime", "-c", "import tickerserve.handler"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    cumulative: dict[str, float] = {}
    own = Counter[str]()
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        module = name.strip()
        cumulative.setdefault(module, int(cumulative_us) / 1000)
        if module.split(".")[0] == "tickerserve":
            own["tickerserve (own modules, self)"] += int(self_us)
    found = [(name, cumulative[name]) for name in _BREAKDOWN if name in cumulative]
    found += [(name, value / 1000) for name, value in own.items()]
    found.append(("whole handler", cumulative.get("tickerserve.handler", 0.0)))
    return found


def local_store_copy(bucket_store: Any, target: Path, model: str) -> Path:
    """The registry and one model's folders, copied from the benchmark bucket to a folder."""
    from tickerserve.layout import DEFAULT_REGISTRY_KEY
    from tickerserve.storage.store import LocalStore

    local = LocalStore(target)
    for key in [DEFAULT_REGISTRY_KEY, *(o.key for o in bucket_store.list(f"{model}/"))]:
        blob = bucket_store.get(key)
        local.put(key, blob.data)
    return target
