"""The tests mirror the code, and every expected failure names its error.

Mapping rule (also in the README's development section): a module with logic,
``lambda_src/tickerserve/<folder>/<module>.py``, is tested in
``tests/unit/<folder>/test_<module>.py``; a top-level module ``tickerserve/<module>.py`` in
``tests/unit/test_<module>.py``; a package's own ``<folder>/<package>/__init__.py`` in
``tests/unit/<folder>/<package>/test_<package>.py`` (``tickerserve/__init__.py`` in
``tests/unit/test_tickerserve.py``). "Logic" is a function or method with a
body beyond a docstring or ``...``: a module of constants, plain dataclasses or exception
declarations needs no file of its own. A test file under ``tests/unit`` not named after a
module is cross-cutting and listed in ``CROSS_CUTTING`` with what it covers.

Every ``pytest.raises`` either passes ``match=`` or binds the exception (``as caught``) and
later asserts on its code or message (``caught.value.code``, ``caught.value.message``,
``str(caught.value)``, ``caught.match(...)``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.import_graph import modules

TESTS = Path(__file__).resolve().parent.parent
UNIT = TESTS / "unit"

# Test files under tests/unit that are not named after one module, and why.
CROSS_CUTTING = {
    "test_layers.py": "the declared layer order (tickerserve.LAYERS) over the whole package",
    "test_definitions.py": "no copy of a shared name or threshold (layout.json, metric_names.json,"
    " monitor/config.json) anywhere in the runtime, infra, app or bench",
    "test_test_layout.py": "this file: the test layout and pytest.raises checks",
    "http/test_api_fuzz.py": "property-based fuzzing of the whole HTTP surface",
    "serving/test_families.py": "every model family served end to end: convert, publish, load",
    "serving/test_networks.py": "seed 001's GRUs and PPO policies served end to end, captured",
}

# What an exception check may assert on, besides ``match=``.
_MESSAGE_ATTRIBUTES = frozenset({"code", "message", "args"})


def has_logic(source: str) -> bool:
    """Whether a module defines a function or method that does something."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            body = [
                s
                for s in node.body
                if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
            ]
            if body:
                return True
    return False


def expected_test_file(module: str, path: Path) -> Path:
    """Where the tests of ``module`` (a dotted name, ``path`` its source) live."""
    parts = module.split(".")[1:]
    if not parts:  # the package's own __init__
        return UNIT / "test_tickerserve.py"
    if path.name == "__init__.py":
        return UNIT.joinpath(*parts, f"test_{parts[-1]}.py")
    return UNIT.joinpath(*parts[:-1], f"test_{parts[-1]}.py")


def missing_test_files(sources: dict[str, Path]) -> list[str]:
    """One line per module with logic and no test file: which file to create."""
    missing = []
    for module, path in sorted(sources.items()):
        if not has_logic(path.read_text()):
            continue
        expected = expected_test_file(module, path)
        if not expected.exists():
            missing.append(f"{module}: create {expected.relative_to(TESTS.parent)}")
    return missing


def _is_pytest_raises(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "raises"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "pytest"
    )


def _checks_message(name: str, node: ast.AST) -> bool:
    """Whether ``node`` asserts on ``name``'s code or message, or calls ``name.match``."""
    for sub in ast.walk(node):
        if (  # caught.value.code / caught.value.message / caught.value.args
            isinstance(sub, ast.Attribute)
            and sub.attr in _MESSAGE_ATTRIBUTES
            and isinstance(sub.value, ast.Attribute)
            and sub.value.attr == "value"
            and isinstance(sub.value.value, ast.Name)
            and sub.value.value.id == name
        ):
            return True
        if (  # str(caught.value)
            isinstance(sub, ast.Call)
            and isinstance(sub.func, ast.Name)
            and sub.func.id == "str"
            and sub.args
            and isinstance(sub.args[0], ast.Attribute)
            and sub.args[0].attr == "value"
            and isinstance(sub.args[0].value, ast.Name)
            and sub.args[0].value.id == name
        ):
            return True
        if (  # caught.match("...")
            isinstance(sub, ast.Call)
            and isinstance(sub.func, ast.Attribute)
            and sub.func.attr == "match"
            and isinstance(sub.func.value, ast.Name)
            and sub.func.value.id == name
        ):
            return True
    return False


def _followers(function: ast.AST, block: ast.With | ast.AsyncWith) -> Iterator[ast.AST]:
    """The statements of ``function`` that run after ``block`` (asserts and helper calls)."""
    for node in ast.walk(function):
        if isinstance(node, ast.stmt) and node.lineno > (block.end_lineno or block.lineno):
            yield node


def bare_raises(source: str, filename: str) -> list[str]:
    """``file:line`` of every ``pytest.raises`` that checks only the exception's class."""
    found = []
    tree = ast.parse(source)
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    for function in functions:
        for block in ast.walk(function):
            if not isinstance(block, ast.With | ast.AsyncWith):
                continue
            for item in block.items:
                call = item.context_expr
                if not _is_pytest_raises(call):
                    continue
                assert isinstance(call, ast.Call)
                if any(k.arg == "match" for k in call.keywords):
                    continue
                name = item.optional_vars.id if isinstance(item.optional_vars, ast.Name) else None
                if name is not None and any(
                    isinstance(f, ast.Assert | ast.Return | ast.Expr) and _checks_message(name, f)
                    for f in _followers(function, block)
                ):
                    continue
                found.append(f"{filename}:{call.lineno}")
    # pytest.raises(X, fn, *args), the call form, can never check the message.
    for node in ast.walk(tree):
        if _is_pytest_raises(node) and isinstance(node, ast.Call) and len(node.args) > 1:
            found.append(f"{filename}:{node.lineno}")
    return found


# The package as it is.


def test_every_module_with_logic_has_a_test_file_named_after_it():
    missing = missing_test_files(modules())
    assert not missing, "modules without a test file named after them:\n" + "\n".join(missing)


def test_every_unit_test_file_is_named_after_a_module_or_listed_as_cross_cutting():
    expected = {expected_test_file(m, p) for m, p in modules().items() if has_logic(p.read_text())}
    stray = [
        str(path.relative_to(UNIT))
        for path in sorted(UNIT.rglob("test_*.py"))
        if path not in expected and str(path.relative_to(UNIT)) not in CROSS_CUTTING
    ]
    assert not stray, (
        "test files named after no module (rename after the module they test, or list in"
        " CROSS_CUTTING with what they cover):\n" + "\n".join(stray)
    )


def test_every_cross_cutting_file_exists():
    assert [name for name in CROSS_CUTTING if not (UNIT / name).exists()] == []


def test_every_test_folder_is_a_package():
    # Two folders may hold a test file of the same name (test_families.py) only as packages.
    folders = {path.parent for path in UNIT.rglob("test_*.py")}
    assert sorted(str(f) for f in folders if not (f / "__init__.py").exists()) == []


def test_every_pytest_raises_checks_the_code_or_message():
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        found += bare_raises(path.read_text(), str(path.relative_to(TESTS.parent)))
    assert not found, (
        "pytest.raises that checks only the class (add match=, or bind it and assert on"
        " caught.value.code / .message):\n" + "\n".join(found)
    )


# The checks themselves, on sources built to break them.


def test_constants_dataclasses_and_protocols_are_not_logic():
    source = '''
from dataclasses import dataclass
from typing import Protocol
LIMIT = 3
class Failed(Exception):
    """A declaration."""
    code = "failed"
@dataclass
class Point:
    x: int
class Member(Protocol):
    def predict(self, rows: list[float]) -> float:
        """What a member does."""
        ...
'''
    assert has_logic(source) is False
    assert has_logic("def double(x):\n    return 2 * x\n") is True
    assert has_logic("class A:\n    def f(self):\n        '''doc'''\n        return 1\n") is True


def test_a_missing_test_file_is_named_with_its_path(tmp_path: Path):
    logic = tmp_path / "views.py"
    logic.write_text("def view():\n    return 1\n")
    constants = tmp_path / "names.py"
    constants.write_text("NAME = 'x'\n")
    package = tmp_path / "__init__.py"
    package.write_text("def detect():\n    return None\n")
    sources = {
        "tickerserve.http.zz_views": logic,
        "tickerserve.http.zz_names": constants,
        "tickerserve.zz_top": logic,
        "tickerserve.cli.zz_pkg": package,
    }
    assert missing_test_files(sources) == [
        "tickerserve.cli.zz_pkg: create tests/unit/cli/zz_pkg/test_zz_pkg.py",
        "tickerserve.http.zz_views: create tests/unit/http/test_zz_views.py",
        "tickerserve.zz_top: create tests/unit/test_zz_top.py",
    ]


def test_the_existing_mapping_finds_the_module_files():
    sources = modules()
    store = "tickerserve.storage.store"
    assert expected_test_file(store, sources[store]) == UNIT / "storage" / "test_store.py"
    importers = "tickerserve.cli.importers"
    assert expected_test_file(importers, sources[importers]) == (
        UNIT / "cli" / "importers" / "test_importers.py"
    )
    assert expected_test_file("tickerserve.layout", sources["tickerserve.layout"]) == (
        UNIT / "test_layout.py"
    )


def test_a_raises_without_a_message_check_is_reported_with_its_line():
    source = """
import pytest

def test_class_only():
    with pytest.raises(ValueError):
        int("x")

def test_status_only():
    with pytest.raises(ValueError) as caught:
        int("x")
    assert caught.type is ValueError

def test_call_form():
    pytest.raises(ValueError, int, "x")

def test_match():
    with pytest.raises(ValueError, match="invalid literal"):
        int("x")

def test_code():
    with pytest.raises(ValueError) as caught:
        int("x")
    assert caught.value.code == "bad"

def test_message():
    with pytest.raises(ValueError) as caught:
        int("x")
    assert "invalid" in str(caught.value)

def test_match_method():
    with pytest.raises(ValueError) as caught:
        int("x")
    caught.match("invalid")
"""
    assert bare_raises(source, "t.py") == ["t.py:5", "t.py:9", "t.py:14"]
