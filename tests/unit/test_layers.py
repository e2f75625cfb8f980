"""The package's layers: declared once (``tickerserve.LAYERS``), imported only downward, no
cycles, read statically from the source (so a lazily imported module counts too)."""

from __future__ import annotations

import tickerserve
from tests.import_graph import cycles, graph, layer_of, modules, upward_imports

TOP_LEVEL_LIMIT = 8


def test_every_module_belongs_to_a_declared_layer():
    undeclared = [m for m in modules() if layer_of(m, tickerserve.LAYERS) is None]
    assert undeclared == []


def test_no_module_imports_from_a_higher_layer():
    assert upward_imports(graph(), tickerserve.LAYERS) == []


def test_the_import_graph_has_no_cycle():
    assert cycles(graph()) == []


def test_few_modules_live_directly_in_the_package():
    top = sorted(m for m in modules() if m.count(".") == 1 and modules()[m].name != "__init__.py")
    assert len(top) + 1 <= TOP_LEVEL_LIMIT, top  # + the package's own __init__


def test_every_folder_says_what_belongs_there():
    for name, path in modules().items():
        if path.name == "__init__.py":
            doc = path.read_text().lstrip()
            assert doc.startswith('"""') and len(doc.split('"""')[1].split()) >= 12, name


# The checks themselves, on graphs built to break them.
LAYERS = ("errors", "storage", "serving", "http")


def test_an_upward_import_is_reported_with_both_ends():
    edges = {
        "tickerserve.storage.store": {"tickerserve.errors", "tickerserve.serving.service"},
        "tickerserve.http.api": {"tickerserve.serving.service"},
    }
    assert upward_imports(edges, LAYERS) == [
        ("tickerserve.storage.store", "tickerserve.serving.service")
    ]


def test_a_cycle_through_three_modules_is_reported_once():
    edges = {
        "tickerserve.storage.a": {"tickerserve.storage.b"},
        "tickerserve.storage.b": {"tickerserve.storage.c"},
        "tickerserve.storage.c": {"tickerserve.storage.a", "tickerserve.errors"},
        "tickerserve.errors": set(),
    }
    assert cycles(edges) == [
        ["tickerserve.storage.a", "tickerserve.storage.b", "tickerserve.storage.c"]
    ]


def test_a_module_outside_every_layer_has_no_layer():
    assert layer_of("tickerserve.utils.misc", LAYERS) is None
    assert layer_of("tickerserve", LAYERS) == -1
    assert layer_of("tickerserve.http.api", LAYERS) == 3
