"""The layer rule, checked from the import graph of src/confide (read with ast).

Each top-level package or module of ``confide`` (a "unit") may import only the
units its row of ``MAY_IMPORT`` lists; the table is layered (it has no cycle),
so no unit imports one above it. The actual graph has no cycle either. Where the
tree still breaks the rule, ``TO_DO`` lists the edge and why: the test fails
when a new edge appears that neither allows, and when a to-do is done but left
in the list, so the list is exactly the work left (issue 11).
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from pathlib import Path

from ._import_graph import ROOT, Edge, cycles, module_imports, package_edges

SRC = Path(__file__).resolve().parents[2] / "src"
GENERATED = ("_gen",)  # protobuf stubs: written by the generator, import only grpc/protobuf

_FOUNDATION = frozenset({"config", "errors", "_json", "_status", "_atomic", "invocation",
                         "_units", "executor_registry", "staged", "_suspend", "_mounts"})

#: What each unit may import (besides itself), bottom to top (docs/architecture.md, "Layers").
MAY_IMPORT: dict[str, frozenset[str]] = {
    # Foundation: limits, domain errors, JSON and status helpers, the atomic
    # file write, the executor/function contract, the executor registry, the
    # staged task, blocking code parked on the event loop, the private mounts'
    # unshare and mount. They import nothing of confide.
    ROOT: frozenset(),
    **{unit: frozenset() for unit in _FOUNDATION},
    # Observability: metrics, log format and context (prometheus_client, logging);
    # the package root only for ``__version__`` (confide_build_info).
    "telemetry": _FOUNDATION | {ROOT},
    # Pure cores, each on its own.
    "crypto": _FOUNDATION,
    "attestation": _FOUNDATION,
    "keys": _FOUNDATION,
    "rpc": _FOUNDATION,
    "functions": _FOUNDATION,  # builtins: the contract, never the executors
    # MesaPy mode: Python 2 translation (services) and its sandbox runtime (executors).
    "mesapy": _FOUNDATION,
    # The operator's configuration (TOML + environment over Limits).
    "settings": _FOUNDATION,
    # What builds on one core.
    "storage": _FOUNDATION | {"crypto", "telemetry"},
    "executors": _FOUNDATION | {"functions", "mesapy"},
    # Business rules (no grpc; the attestation report service verifies quotes, the key
    # service uses keys/), the worker, the SDK.
    "services": _FOUNDATION | {"attestation", "crypto", "keys", "mesapy", "storage",
                               "telemetry"},
    "execution": _FOUNDATION | {"attestation", "crypto", "keys", "rpc", "executors",
                                "settings", "telemetry"},
    "client": _FOUNDATION | {"attestation", "crypto", "rpc"},  # the SDK: no server side
    # The user's local web console: pages over the SDK, nothing of the server side.
    "console": _FOUNDATION | {"client"},
    # Confidential inference (issue 17): the three owners' steps and their flow, over the SDK.
    "inference": _FOUNDATION | {"client"},
    # The services over gRPC: adapters, their interceptor and serving loop.
    "api": _FOUNDATION | {"attestation", "keys", "rpc", "services", "telemetry"},
    # The composition root: wires the services a node hosts.
    "node": _FOUNDATION | {"api", "attestation", "crypto", "execution", "keys", "rpc",
                           "services", "storage", "telemetry"},
    # The command line: the SDK for client commands, the node for serve/demo,
    # storage and the audit service for `audit verify`, the executors for `function test`,
    # the web console for `console`.
    "cli": _FOUNDATION | {"attestation", "client", "console", "crypto", "executors",
                          "inference", "keys", "mesapy", "node", "services", "settings",
                          "storage", "telemetry"},
    "__main__": frozenset({"cli"}),
}

#: Inside ``attestation/``: what each subpackage (or the ``_errors`` module) may import
#: besides itself, bottom to top (docs/attestation.md, "Layout"). Its ``__init__`` (ROOT)
#: gathers the public surface from all of them.
ATTESTATION_MAY_IMPORT: dict[str, frozenset[str]] = {
    "_errors": frozenset(),
    "evidence": frozenset({"_errors"}),
    "appraisal": frozenset({"_errors", "evidence"}),
    "tls": frozenset({"_errors", "evidence", "appraisal"}),  # verdicts: appraisal → TLS seam
    "measurement": frozenset({"_errors", "evidence", "appraisal"}),
    "attesters": frozenset({"_errors", "evidence"}),
    "sim": frozenset({"_errors", "evidence", "appraisal", "measurement"}),
}
ATTESTATION_MAY_IMPORT[ROOT] = frozenset(ATTESTATION_MAY_IMPORT)

#: Edges the rule forbids that the tree still has, each with the change that removes it.
TO_DO: dict[tuple[str, str], str] = {}


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


def test_services_and_what_they_stand_on_import_no_grpc() -> None:
    """Business rules are tested without a server: grpc and protobuf stay in api/, rpc/
    and the processes that talk (the worker, the SDK, the node)."""
    wire = ("grpc", "google.protobuf")
    found = []
    for unit in ("services", "storage", "keys", "crypto", "functions", "executors",
                 *sorted(_FOUNDATION)):
        base = SRC / "confide" / unit
        for path in sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]:
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                found += [f"{path.relative_to(SRC)}:{node.lineno}: {n}" for n in names
                          if n.startswith(wire)]
    assert found == []


def test_sdk_imports_nothing_server_side() -> None:
    server_side = {"node", "services", "storage", "api", "execution", "executors", "keys"}
    assert _graph(_edges())["client"] & server_side == set()


Imports = dict[str, list[tuple[str, int]]]
_ATTESTATION = ("confide", "attestation")


@functools.cache
def _imports() -> Imports:
    return module_imports(SRC, "confide", exclude=GENERATED)


def _attestation_part(module: str) -> str | None:
    """``confide.attestation.tls._bundle`` → ``tls``; the package itself → ROOT."""
    parts = tuple(module.split("."))
    if parts[:2] != _ATTESTATION:
        return None
    return parts[2] if len(parts) > 2 else ROOT


def attestation_layer_violations(imports: Imports,
                                 rule: dict[str, frozenset[str]]) -> list[str]:
    """Imports between attestation's parts that ``rule`` does not allow."""
    wrong = []
    for module, found in imports.items():
        source = _attestation_part(module)
        for target_module, line in found:
            target = _attestation_part(target_module)
            if source is None or target is None or target == source:
                continue
            if target not in rule[source]:
                wrong.append(f"{module}:{line}: {source} imports {target}")
    return wrong


def attestation_surface_violations(imports: Imports) -> list[str]:
    """Imports of a subpackage's private module from outside it, and of
    ``confide.attestation._errors`` from outside attestation/."""
    wrong = []
    for module, found in imports.items():
        for target, line in found:
            parts = target.split(".")
            if tuple(parts[:2]) != _ATTESTATION or len(parts) < 3:
                continue
            if len(parts) == 3 and parts[2].startswith("_"):
                ok = _attestation_part(module) is not None
            else:
                owner = ".".join(parts[:3])
                ok = len(parts) == 3 or module == owner or module.startswith(owner + ".")
            if not ok:
                wrong.append(f"{module}:{line} imports {target}")
    return wrong


def test_attestation_subpackages_are_layered() -> None:
    assert cycles(ATTESTATION_MAY_IMPORT) == []
    tree = SRC / "confide" / "attestation"
    parts = {p.stem if p.is_file() else p.name for p in tree.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.name != "__init__.py"}
    assert parts | {ROOT} == set(ATTESTATION_MAY_IMPORT)
    wrong = attestation_layer_violations(_imports(), ATTESTATION_MAY_IMPORT)
    assert wrong == [], "\n".join(wrong)


def test_attestation_subpackages_are_used_through_their_surface() -> None:
    """Outside a subpackage, only its ``__init__`` is imported; outside attestation/,
    the errors come from ``confide.attestation``. A newcomer reads one ``__all__``."""
    wrong = attestation_surface_violations(_imports())
    assert wrong == [], "\n".join(wrong)


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


def _confide_tree(tmp: Path, files: dict[str, str]) -> Imports:
    for name, text in files.items():
        path = tmp / "confide" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return module_imports(tmp, "confide")


def test_checker_reports_an_upward_import_inside_attestation(tmp_path: Path) -> None:
    imports = _confide_tree(tmp_path, {
        "__init__.py": "",
        "attestation/__init__.py": "from . import evidence, appraisal\n",
        "attestation/_errors.py": "",
        "attestation/evidence/__init__.py": "",
        "attestation/evidence/_quote.py": "from .._errors import E\nfrom ..appraisal import P\n",
        "attestation/appraisal/__init__.py": "from ..evidence import Q\n",
    })
    rule = {"_errors": frozenset(), "evidence": frozenset({"_errors"}),
            "appraisal": frozenset({"_errors", "evidence"}),
            ROOT: frozenset({"_errors", "evidence", "appraisal"})}
    assert attestation_layer_violations(imports, rule) == [
        "confide.attestation.evidence._quote:2: evidence imports appraisal"]


def test_checker_reports_a_private_module_imported_from_outside(tmp_path: Path) -> None:
    imports = _confide_tree(tmp_path, {
        "__init__.py": "",
        "attestation/__init__.py": "from ._errors import E\nfrom .tls import T\n",
        "attestation/_errors.py": "",
        "attestation/tls/__init__.py": "from ._bundle import T\n",
        "attestation/tls/_bundle.py": "from .._errors import E\n",
        "attestation/sim/__init__.py": "from ..tls._bundle import T\n",  # reaches inside tls
        "cli/__init__.py": "from ..attestation import E\nfrom ..attestation.tls import T\n",
        "node/__init__.py": "from ..attestation._errors import E\n"
                              "from ..attestation.tls._bundle import T\n",
    })
    assert sorted(attestation_surface_violations(imports)) == [
        "confide.attestation.sim:1 imports confide.attestation.tls._bundle",
        "confide.node:1 imports confide.attestation._errors",
        "confide.node:2 imports confide.attestation.tls._bundle",
    ]
