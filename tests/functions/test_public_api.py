"""The public surface of confide.functions and the builtin registry."""

from __future__ import annotations

import confide.functions as functions
from confide.executors import builtin as builtin_executor

TEACLAVE_BUILTIN_NAMES = {
    "builtin-echo",
    "builtin-gbdt-train",
    "builtin-gbdt-predict",
    "builtin-logistic-regression-train",
    "builtin-logistic-regression-predict",
    "builtin_online_decrypt",
    "builtin-private-join-and-compute",
    "builtin-ordered-set-intersect",
    "builtin-ordered-set-join",
    "builtin-rsa-sign",
    "builtin-face-detection",
    "builtin_principal_components_analysis",
    "builtin-password-check",
}


def test_functions_package_exports_exactly_its_sorted_api() -> None:
    assert functions.__all__ == ["BUILTINS", "Builtin", "FunctionContext", "LogSink"]
    assert functions.__all__ == sorted(functions.__all__)


def test_builtin_executor_module_exports_exactly_its_api() -> None:
    assert builtin_executor.__all__ == ["FUNCTION_NOT_FOUND", "BuiltinExecutor"]


def test_registry_has_exactly_teaclaves_13_names_with_underscore_quirk() -> None:
    assert set(functions.BUILTINS) == TEACLAVE_BUILTIN_NAMES
    assert "builtin-online-decrypt" not in functions.BUILTINS
    assert "builtin-principal-components-analysis" not in functions.BUILTINS


def test_registry_cannot_be_mutated_at_runtime() -> None:
    try:
        functions.BUILTINS["evil"] = functions.BUILTINS["builtin-echo"]  # type: ignore[index]
    except TypeError:
        return
    raise AssertionError("BUILTINS accepted a new entry")
