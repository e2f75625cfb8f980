"""The function asset ships serving code with bytecode for the runtime's Python, and the
bytes (and so the CDK asset hash) do not depend on the machine or folder that built them."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import pytest
from aws_cdk import FileSystem
from aws_cdk.assertions import Annotations, Match

from infra import bytecode
from infra.bytecode import MISSING_PYTHON_WARNING, RUNTIME_PYTHON, compile_tree, find_python
from infra.constructs import prediction_function
from infra.function_asset import (
    CODE_ROOT,
    MONITOR_FILES,
    PREDICTION_FILES,
    TASK_ROOT,
    included_files,
    stage_function_code,
)
from tests.import_graph import closure
from tests.infra.conftest import synth

PYTHON = find_python(RUNTIME_PYTHON)
needs_runtime_python = pytest.mark.skipif(
    PYTHON is None,
    reason=f"Python {RUNTIME_PYTHON} (the Lambda runtime's version) is not installed",
)
PYC = f"cpython-{RUNTIME_PYTHON.replace('.', '')}.pyc"


def pyc_flags(path: Path) -> int:
    """PEP 552 flags: bit 0 hash-based, bit 1 check_source."""
    return int.from_bytes(path.read_bytes()[4:8], "little")


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_only_serving_code_is_included():
    names = {p.as_posix() for p in included_files(CODE_ROOT, PREDICTION_FILES)}
    assert "tickerserve/handler.py" in names
    assert "tickerserve/serving/service.py" in names
    prefixes = ("tickerserve/cli/", "tickerserve/publishing/", "tickerserve/monitor/")
    assert not [n for n in names if n.startswith(prefixes)]


def test_a_listed_file_that_does_not_exist_fails_the_build(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"tickerserve/gone\.py"):
        included_files(CODE_ROOT, [*PREDICTION_FILES, "tickerserve/gone.py"])


@needs_runtime_python
def test_every_module_has_unchecked_bytecode_recording_its_lambda_path(tmp_path):
    assert PYTHON is not None
    asset = stage_function_code(CODE_ROOT, PREDICTION_FILES, python=PYTHON, cache_root=tmp_path)
    assert asset.bytecode
    package = asset.path / "tickerserve"
    sources = sorted(package.rglob("*.py"))
    assert len(sources) == len([f for f in PREDICTION_FILES if f.endswith(".py")])
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.{PYC}"
        assert compiled.is_file(), source.name
        # hash-based and unchecked: valid whatever mtimes the zip round trip leaves
        assert pyc_flags(compiled) == 0b01, source.name
        data = compiled.read_bytes()
        assert f"{TASK_ROOT}/{source.relative_to(asset.path).as_posix()}".encode() in data
        assert str(tmp_path).encode() not in data  # the build folder never leaks in


@needs_runtime_python
def test_asset_bytes_and_hash_do_not_depend_on_the_building_folder(tmp_path, monkeypatch):
    assert PYTHON is not None
    # Given the same sources checked out in two places, staged into two caches, with the
    # second build's environment asking for another hash seed
    checkouts = []
    for name in ("one", "two"):
        checkout = tmp_path / name / "lambda_src"
        shutil.copytree(CODE_ROOT / "tickerserve", checkout / "tickerserve")
        checkouts.append(checkout)
    os.utime(checkouts[1] / "tickerserve" / "http" / "api.py", (1e9, 1e9))
    first = stage_function_code(
        checkouts[0], PREDICTION_FILES, python=PYTHON, cache_root=tmp_path / "cache-one"
    )
    monkeypatch.setenv("PYTHONHASHSEED", "4242")
    second = stage_function_code(
        checkouts[1], PREDICTION_FILES, python=PYTHON, cache_root=tmp_path / "cache-two"
    )
    # Then every file is byte-identical, so is CDK's asset hash, and so are the mtimes
    assert files(first.path) == files(second.path)
    assert FileSystem.fingerprint(str(first.path)) == FileSystem.fingerprint(str(second.path))
    assert {p.stat().st_mtime for p in second.path.rglob("*")} == {bytecode.FIXED_MTIME}


@needs_runtime_python
def test_python_3_13_loads_the_shipped_bytecode_without_recompiling(tmp_path):
    assert PYTHON is not None
    asset = stage_function_code(CODE_ROOT, PREDICTION_FILES, python=PYTHON, cache_root=tmp_path)
    # Given a copy whose layout.py source no longer compiles: only its .pyc can import it
    copy = tmp_path / "task"
    shutil.copytree(asset.path, copy)
    (copy / "tickerserve" / "layout.py").write_text("this is not python\n")
    probe = "import tickerserve.layout as m; print(m.normalize_ticker('smh'))"
    result = subprocess.run(
        [str(PYTHON), "-S", "-s", "-B", "-c", probe],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(copy)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Then the module imports from its bytecode, as it will from Lambda's read-only /var/task
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "SMH"


@needs_runtime_python
def test_compiled_trees_are_identical_whatever_the_hash_seed_or_folder(tmp_path):
    assert PYTHON is not None
    # A set literal in a membership test compiles to a frozenset constant, whose order
    # would follow the string hash seed; the compiler runs with a fixed one.
    source = 'def kind(x):\n    return x in {"alpha", "beta", "gamma", "delta", "eps"}\n'
    outputs = []
    for name, seed in (("a", "1"), ("b", "2")):
        tree = tmp_path / name / "python"
        (tree / "pkg").mkdir(parents=True)
        (tree / "pkg" / "__init__.py").write_text(source)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PYTHONHASHSEED", seed)
            compile_tree(PYTHON, tree, "/opt/python")
        outputs.append(files(tree))
    assert outputs[0] == outputs[1]
    assert b"/opt/python/pkg/__init__.py" in outputs[0][f"pkg/__pycache__/__init__.{PYC}"]


def test_without_the_runtime_python_sources_ship_and_synth_warns_once(monkeypatch):
    # Given a machine without Python 3.13
    monkeypatch.setattr(prediction_function, "find_python", lambda: None)
    s = synth()
    warnings = Annotations.from_stack(s.stacks["Serving"]).find_warning(
        "*", Match.string_like_regexp("without bytecode")
    )
    # Then synth says once what it costs, and the asset holds sources only
    assert len(warnings) == 1
    assert MISSING_PYTHON_WARNING in str(warnings[0].entry.data)
    code = s.stacks["Serving"].node.find_child("Prediction")
    assert isinstance(code, prediction_function.PredictionFunction)
    assert not code.code.bytecode
    assert not list(code.code.path.rglob("*.pyc"))
    assert (code.code.path / "tickerserve" / "handler.py").is_file()


@needs_runtime_python
def test_with_the_runtime_python_synth_does_not_warn(dev):
    warnings = Annotations.from_stack(dev.stacks["Serving"]).find_warning(
        "*", Match.string_like_regexp("without bytecode")
    )
    assert warnings == []


def shipped_modules(files: Iterable[str]) -> set[str]:
    """Dotted module names of the ``.py`` files in an include list."""
    return {
        ".".join(PurePosixPath(f).with_suffix("").parts).removesuffix(".__init__")
        for f in files
        if f.endswith(".py")
    }


def asset_mismatch(handler: str, files: Iterable[str]) -> tuple[list[str], list[str]]:
    """(shipped but never reached, reached but not shipped) for ``handler``'s asset."""
    reached = closure([handler])
    shipped = shipped_modules(files)
    return sorted(shipped - reached), sorted(reached - shipped)


@pytest.mark.parametrize(
    ("handler", "files"),
    [("tickerserve.handler", PREDICTION_FILES), ("tickerserve.monitor.handler", MONITOR_FILES)],
    ids=["prediction", "monitor"],
)
def test_each_asset_ships_exactly_its_handlers_import_closure(handler, files):
    extra, missing = asset_mismatch(handler, files)
    assert extra == [], "the asset ships modules its handler never imports"
    assert missing == [], "the asset misses modules its handler imports"
    # A definition (contract.json, layout.json, ...) sits beside the module that reads it at
    # import: it ships whenever that module does.
    definitions = {p.relative_to(CODE_ROOT).as_posix() for p in CODE_ROOT.rglob("*.json")}
    readers = {d: d.removesuffix(".json") + ".py" for d in definitions}
    assert {d for d, module in readers.items() if module in files} <= set(files)
    assert "tickerserve/contract.json" in files and "tickerserve/layout.json" in files


def test_the_closure_check_catches_an_extra_and_a_missing_module():
    files = [f for f in PREDICTION_FILES if f != "tickerserve/storage/registry.py"]
    files.append("tickerserve/cli/main.py")
    extra, missing = asset_mismatch("tickerserve.handler", files)
    assert extra == ["tickerserve.cli.main"]
    assert missing == ["tickerserve.storage.registry"]
