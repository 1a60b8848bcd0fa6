"""The layer rule, checked from the import graph of src/confide (read with ast).

Each top-level package or module of ``confide`` (a "unit") may import only the
units its row of ``MAY_IMPORT`` lists; the table is layered (it has no cycle),
so no unit imports one above it. The actual graph has no cycle either. Where the
tree still breaks the rule, ``TO_DO`` lists the edge and why: the test fails
when a new edge appears that neither allows, and when a to-do is done but left
in the list, so the list is exactly the work left (issue 11).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from pathlib import Path

from ._import_graph import ROOT, Edge, cycles, package_edges

SRC = Path(__file__).resolve().parents[2] / "src"
GENERATED = ("_gen",)  # protobuf stubs: written by the generator, import only grpc/protobuf

_FOUNDATION = frozenset({"config", "errors", "_json", "_status", "_atomic", "invocation",
                         "_units"})

#: What each unit may import (besides itself), bottom to top (docs/architecture.md, "Layers").
MAY_IMPORT: dict[str, frozenset[str]] = {
    # Foundation: limits, domain errors, JSON and status helpers, the atomic
    # file write, the executor/function contract. They import nothing of confide.
    ROOT: frozenset(),
    **{unit: frozenset() for unit in _FOUNDATION},
    # Pure cores, each on its own.
    "crypto": _FOUNDATION,
    "attestation": _FOUNDATION,
    "keys": _FOUNDATION,
    "rpc": _FOUNDATION,
    "functions": _FOUNDATION,  # builtins: the contract, never the executors
    # The operator's configuration (TOML + environment over Limits).
    "settings": _FOUNDATION,
    # What builds on one core.
    "storage": _FOUNDATION | {"crypto"},
    "executors": _FOUNDATION | {"functions"},
    # Business rules (no grpc), the worker, the SDK.
    "services": _FOUNDATION | {"attestation", "crypto", "keys", "storage"},
    "execution": _FOUNDATION | {"attestation", "crypto", "keys", "rpc", "executors",
                                "settings"},
    "client": _FOUNDATION | {"attestation", "crypto", "rpc"},  # the SDK: no server side
    # gRPC adapters of the services.
    "api": _FOUNDATION | {"attestation", "crypto", "keys", "rpc", "services"},
    # The composition root: wires everything for one node.
    "server": _FOUNDATION | {"api", "attestation", "crypto", "execution", "keys", "rpc",
                             "services", "storage"},
    # The command line: the SDK for client commands, the server for serve/demo,
    # storage and the audit service for `audit verify`.
    "cli": _FOUNDATION | {"attestation", "client", "crypto", "keys", "server", "services",
                          "settings", "storage"},
    "__main__": frozenset({"cli"}),
}

#: Edges the rule forbids that the tree still has, each with the change that removes it.
TO_DO: dict[tuple[str, str], str] = {
    ("execution", "api"): "execution/_worker.py converts the scheduler's StagedTask message "
                          "with api.scheduler.staged_from_proto; issue 11 item 4 (one name per "
                          "kind of wiring) moves that conversion below both.",
}


@functools.cache
def _edges() -> list[Edge]:
    return package_edges(SRC, "confide", exclude=GENERATED)


def _graph(edges: list[Edge]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for e in edges:
        graph[e.source].add(e.target)
    return graph


def test_the_rule_table_is_layered() -> None:
    assert cycles(MAY_IMPORT) == []
    assert all(unit not in allowed for unit, allowed in MAY_IMPORT.items())


def test_every_unit_of_the_tree_has_a_place_in_the_table() -> None:
    units = {p.stem if p.is_file() else p.name for p in (SRC / "confide").iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.name != "__init__.py"}
    assert units | {ROOT} == set(MAY_IMPORT)


def test_no_package_cycle() -> None:
    assert cycles(_graph(_edges())) == []


def test_no_import_outside_the_layer_rule() -> None:
    wrong = sorted(f"{e.where}: {e.source} imports {e.target}" for e in _edges()
                   if e.target not in MAY_IMPORT[e.source] and (e.source, e.target) not in TO_DO)
    assert wrong == [], "\n".join(wrong)


def test_every_to_do_is_still_needed_and_still_against_the_rule() -> None:
    present = {(e.source, e.target) for e in _edges()}
    for (source, target), why in TO_DO.items():
        assert (source, target) in present, f"{source} -> {target} is gone: drop it ({why})"
        assert target not in MAY_IMPORT[source], f"{source} -> {target} is allowed now"


def test_functions_and_executors_share_the_contract_not_each_other() -> None:
    graph = _graph(_edges())
    assert "executors" not in graph["functions"]
    assert "invocation" in graph["functions"] and "invocation" in graph["executors"]


def test_sdk_imports_nothing_server_side() -> None:
    server_side = {"server", "services", "storage", "api", "execution", "executors", "keys"}
    assert _graph(_edges())["client"] & server_side == set()


# -- the checker itself --------------------------------------------------------
def _tree(tmp: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp


def test_checker_finds_a_cycle_through_relative_and_lazy_imports(tmp_path: Path) -> None:
    src = _tree(tmp_path, {
        "__init__.py": "",
        "low/__init__.py": "def f():\n    from ..high import thing\n",  # lazy, relative
        "high/__init__.py": "from pkg.low import f\n",
    })
    graph = _graph(package_edges(src, "pkg"))
    assert cycles(graph) == [["high", "low"]]


def test_checker_sees_type_checking_imports_and_submodules_of_the_root(tmp_path: Path) -> None:
    src = _tree(tmp_path, {
        "__init__.py": "",
        "_util.py": "",
        "gen/skip.py": "import pkg.low\n",
        "low/__init__.py": "",
        "low/_a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.high\n",
        "high/__init__.py": "from .. import _util\n",
    })
    edges = package_edges(src, "pkg", exclude=("gen",))
    assert {(e.source, e.target) for e in edges} == {("low", "high"), ("high", "_util")}
    assert [e.where for e in edges if e.source == "low"] == ["pkg/low/_a.py:3"]


def test_checker_reports_an_upward_import(tmp_path: Path) -> None:
    rule = {"low": frozenset(), "high": frozenset({"low"})}
    src = _tree(tmp_path, {"__init__.py": "", "low/__init__.py": "from ..high import x\n",
                           "high/__init__.py": "x = 1\n"})
    wrong = [e for e in package_edges(src, "pkg") if e.target not in rule[e.source]]
    assert [(e.source, e.target, e.where) for e in wrong] == [
        ("low", "high", "pkg/low/__init__.py:1")]
