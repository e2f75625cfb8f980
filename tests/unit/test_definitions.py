"""Each shared name and threshold is written once: in the runtime's JSON definitions
(``layout.json``, ``metric_names.json``, ``monitor/config.json``), which the runtime and the
CDK app both read. A literal copy anywhere in the code (runtime, infra, app, bench) fails here,
so a name cannot drift apart between what a function emits or writes and what the stack
grants, alarms on or draws."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import pytest

from tickerserve import layout, metric_names
from tickerserve.monitor import config

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lambda_src" / "tickerserve"
CODE = [
    *sorted(PACKAGE.rglob("*.py")),
    *sorted((ROOT / "infra").rglob("*.py")),
    *sorted((ROOT / "bench").rglob("*.py")),
    ROOT / "app.py",
]
# Files another change rewrites meanwhile, whose literals move with it. Every entry names why.
PENDING: dict[Path, str] = {}
# A literal that equals a defined name by design but means something else.
UNRELATED = {
    # the capture bucket's access logs, in the access-log bucket: named after the bucket
    (ROOT / "infra" / "constructs" / "capture_store.py", "capture/"),
}


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


@cache
def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


@cache
def constants(path: Path) -> tuple[tuple[int, object], ...]:
    """Every constant of ``path`` but its docstrings (f-string parts included), with its line."""
    tree = _parsed(path)
    docstrings = _docstrings(tree)
    return tuple(
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and id(node) not in docstrings
    )


def copies(paths: Iterable[Path], pattern: re.Pattern[str]) -> list[str]:
    """``path:line: literal`` for every string constant ``pattern`` finds that is a name or a
    key (no whitespace): prose (help, descriptions, reasons) may mention a name."""
    found = []
    for path in paths:
        for line, value in constants(path):
            if isinstance(value, str) and not re.search(r"\s", value) and pattern.search(value):
                if (path, value) in UNRELATED or path in PENDING:
                    continue
                found.append(f"{_shown(path)}:{line}: {value!r}")
    return found


METRIC_NAMES = sorted(
    {
        *metric_names.RAW["prediction"]["counters"].values(),
        *metric_names.RAW["prediction"]["gauges"].values(),
        *metric_names.RAW["prediction"]["per_model"].values(),
        *metric_names.RAW["monitor"]["figures"].values(),
        metric_names.MONITOR.namespace,
    }
)
PREFIXES = sorted(
    {
        layout.CAPTURE_PREFIX,
        layout.OUTCOMES_PREFIX,
        layout.METADATA_PREFIX,  # the registry and history keys are under it
        layout.BASELINE_FILE,
        f"{layout.PARTITION_KEY}=",
        f"*/{layout.VERSIONS_DIR}/*",
        f"*/{layout.BASELINES_DIR}/*",
    }
)


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_a_metric_name_is_only_in_metric_names_json(name: str) -> None:
    assert copies(CODE, re.compile(rf"(?<![A-Za-z]){re.escape(name)}(?![A-Za-z])")) == []


@pytest.mark.parametrize("name", PREFIXES)
def test_a_bucket_name_is_only_in_layout_json_or_layout_py(name: str) -> None:
    # layout.py defines the names the JSON does not hold (the baseline file); nothing else may
    pattern = re.compile(rf"(?<![A-Za-z_-]){re.escape(name)}")
    assert copies([p for p in CODE if p != PACKAGE / "layout.py"], pattern) == []


# Where the monitor's thresholds are read: none of them may spell a default or a bound. The
# numerical libraries (CDFs, the significance tests) hold mathematical constants, no settings.
MATH = {"distributions.py", "significance.py"}
THRESHOLD_READERS = [
    *sorted(p for p in (PACKAGE / "monitor").glob("*.py") if p.name not in MATH),
    PACKAGE / "cli" / "monitoring.py",
    PACKAGE / "cli" / "report.py",
    ROOT / "infra" / "constructs" / "monitor_function.py",
]
THRESHOLD_VALUES = sorted(
    {s.default for s in config.THRESHOLDS.values()} | {config.DAYS.default, config.MAX_DAYS}
)


def _numbers(nodes: Iterable[tuple[int, object]]) -> list[tuple[int, float]]:
    return [
        (line, value)
        for line, value in nodes
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]


def defined_numbers(path: Path) -> Iterator[tuple[int, object]]:
    """Numbers ``path`` defines a setting with: any float (a threshold is a fraction or a
    percentage), and the integers assigned to a name or given as a parameter's default (a
    window of 30, 7 days), not those used in passing (a font size, a slice)."""
    tree = _parsed(path)
    for line, value in constants(path):
        if isinstance(value, float):
            yield line, value
    for node in ast.walk(tree):
        values: list[ast.expr | None] = []
        if isinstance(node, ast.Assign | ast.AnnAssign):
            values = [node.value]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            values = [*node.args.defaults, *node.args.kw_defaults]
        for value in values:
            if isinstance(value, ast.Constant) and type(value.value) is int:
                yield value.lineno, value.value


def test_no_threshold_default_is_written_where_thresholds_are_read() -> None:
    found = [
        f"{_shown(path)}:{line}: {value}"
        for path in THRESHOLD_READERS
        for line, value in _numbers(defined_numbers(path))
        if value in THRESHOLD_VALUES
    ]
    assert found == []


def test_infra_s_monitor_settings_spell_no_threshold() -> None:
    tree = ast.parse((ROOT / "infra" / "config.py").read_text())
    (section,) = [
        n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "MonitorSettings"
    ]
    numbers = _numbers(
        (n.lineno, n.value) for n in ast.walk(section) if isinstance(n, ast.Constant)
    )
    assert numbers == []


# The checks themselves, on code written to break them.
def test_the_scans_find_a_reintroduced_copy(tmp_path: Path) -> None:
    copied = tmp_path / "copied.py"
    copied.write_text(
        '"""FeatureDriftMax in a docstring is prose."""\n'
        'NAME = "FeatureDriftMax"\n'
        'HELP = "FeatureDriftMax in help text is prose"\n'
        'KEY = f"{ROOT}capture/{day}"\n'
        "DAYS = 7\n"
        "def f(x=0.25, window=30):\n"
        '    """0.25 here is prose too."""\n'
        "    return x[:7]\n"
    )
    assert len(copies([copied], re.compile(r"(?<![A-Za-z])FeatureDriftMax(?![A-Za-z])"))) == 1
    assert len(copies([copied], re.compile(re.escape(layout.CAPTURE_PREFIX)))) == 1
    assert sorted(value for _, value in _numbers(defined_numbers(copied))) == [0.25, 7, 30]
