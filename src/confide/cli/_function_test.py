"""``confide function test FILE``: run a function here, on plaintext files, as the platform would.

The same executor a worker uses (``PythonExecutor``: the bubblewrap + seccomp
sandbox, the same limits; ``WasmExecutor`` for ``.wasm``), given the developer's
own files instead of decrypted task data. Every line the function prints, and
an exception's traceback, is shown: on the platform the same lines reach the
task's log only with ``save_log`` (which every participant approves).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from ..executor_registry import MESAPY, WAMR
from . import _exit
from ._common import Json, emit, err, fail, run
from ._input import UsageError, parse_json_object, parse_pairs

__all__ = ["LocalFiles", "test", "translate"]


class LocalFiles:
    """The executor's ``TaskIO`` over local plaintext files, by data name."""

    def __init__(self, inputs: dict[str, Path], outputs: dict[str, Path]) -> None:
        self._inputs = inputs
        self._outputs = outputs
        self.written: set[str] = set()

    def input_names(self) -> Collection[str]:
        return self._inputs.keys()

    def output_names(self) -> Collection[str]:
        return self._outputs.keys()

    def open_input(self, name: str) -> BinaryIO:
        from ..executors import InvalidInputName

        if name not in self._inputs:
            raise InvalidInputName(name)
        return open(self._inputs[name], "rb")

    def create_output(self, name: str) -> BinaryIO:
        from ..executors import InvalidOutputName

        if name not in self._outputs:
            raise InvalidOutputName(name)
        self.written.add(name)
        return open(self._outputs[name], "wb")


def _check_inputs(inputs: dict[str, Path], executor_type: str) -> None:
    from ..config import Limits

    for name, path in inputs.items():
        if not path.is_file():
            raise UsageError(f"--input {name}={path}: no such file")
    cap = Limits().max_input_bytes
    total = sum(p.stat().st_size for p in inputs.values())
    if total > cap:
        raise UsageError(f"the inputs hold {total} bytes; a {executor_type} function receives at "
                         f"most {cap} bytes of input in total (Limits.max_input_bytes)")


def test(
    file: Annotated[Path, typer.Argument(help="The function: Python source (entrypoint(argv)) "
                                              "or a WebAssembly module (.wasm).")],
    input: Annotated[list[str] | None, typer.Option(
        help="name=path of a plaintext input. Repeatable.")] = None,
    output: Annotated[list[str] | None, typer.Option(
        help="name=path where an output is written. Repeatable.")] = None,
    arg: Annotated[list[str] | None, typer.Option(
        help="key=value argument (a string). Repeatable.")] = None,
    arguments: Annotated[str | None, typer.Option(
        help="All arguments as a JSON object (instead of --arg).")] = None,
    executor_type: Annotated[str | None, typer.Option(
        help=f"{MESAPY.function_type} or {WAMR.function_type}; default by the file's "
             "suffix.")] = None,
    mesapy: Annotated[bool, typer.Option(
        "--mesapy", help="Python 2.7 for MesaPy, as Teaclave's RegisterFunction takes a "
                         "payload that declares no dialect (docs/compatibility-mesapy.md).")
    ] = False,
    json_out: Json = False,
) -> None:
    """Run a function locally in the platform's sandbox; prints its result and its log."""
    from ..executors import FunctionError, FunctionSpec, Invocation

    def go() -> None:
        kind = executor_type or (WAMR.function_type if file.suffix == ".wasm"
                                 else MESAPY.function_type)
        if kind not in (MESAPY.function_type, WAMR.function_type):
            raise UsageError(f"--executor-type must be {MESAPY.function_type} or "
                             f"{WAMR.function_type}, not {kind!r}")
        payload = file.read_bytes()
        if kind == MESAPY.function_type:
            payload = _as_registered(payload, mesapy)
        inputs = {n: Path(p) for n, p in parse_pairs(input, "--input", "name=path").items()}
        outputs = {n: Path(p) for n, p in parse_pairs(output, "--output", "name=path").items()}
        if arguments is not None and arg:
            raise UsageError("give --arguments or --arg, not both")
        args: dict[str, Any] = (
            parse_json_object(arguments, "--arguments") if arguments is not None
            else parse_pairs(arg, "--arg", "key=value"))
        _check_inputs(inputs, kind)
        log: list[str] = []

        def line(text: str) -> None:
            log.append(text)
            if not json_out:
                err.print(text, markup=False, highlight=False)

        io = LocalFiles(inputs, outputs)
        invocation = Invocation(task_id="local-test", function=FunctionSpec(
            "local", file.name, kind, payload), arguments=args, io=io, log=line)
        try:
            with _executor(kind) as executor:
                result = executor.run(invocation)
        except FunctionError as e:  # a limit, a crash, no sandbox: the task would end Err
            emit({"ok": False, "reason": e.reason, "log": log}, json_out)
            raise fail(f"the function failed: {e.reason}", _exit.TASK_FAILED) from e
        raised = kind == MESAPY.function_type and result == "MESAPY_EXEC_ERROR"
        missing = sorted(set(outputs) - io.written)
        emit({"ok": not raised, "result": result, "log": log, "outputs_not_written": missing},
             json_out, result)
        if raised:
            raise fail("the function raised an exception (its traceback is in its log); on the "
                       "platform the result is MESAPY_EXEC_ERROR", _exit.TASK_FAILED)
        if missing:
            raise fail(f"outputs not written: {', '.join(missing)} (on the platform the task "
                       "would fail)", _exit.TASK_FAILED)
    run(go)


def _as_registered(payload: bytes, mesapy: bool) -> bytes:
    """What registration stages for this Python payload (its translation in MesaPy mode)."""
    from ..mesapy import PYTHON2, PYTHON3, TranslationError, resolve, staged_payload

    try:
        resolved = resolve(payload, PYTHON2 if mesapy else PYTHON3)
    except TranslationError as e:
        raise UsageError(str(e)) from None
    return staged_payload(resolved.dialect, payload, resolved.translation)


def translate(
    file: Annotated[Path, typer.Argument(help="A Python 2.7 (MesaPy) function.")],
) -> None:
    """Print the Python 3 text a MesaPy-mode function runs as (registration makes the same)."""
    from ..mesapy import TranslationError
    from ..mesapy import translate as to_python3

    def go() -> None:
        try:
            translation = to_python3(file.read_bytes())
        except TranslationError as e:
            raise UsageError(str(e)) from None
        except OSError as e:
            raise UsageError(f"{file}: {e.strerror}") from None
        division = "true" if translation.true_division else "Python 2 (floor for integers)"
        err.print(f"# division: {division}", markup=False, highlight=False)
        typer.echo(translation.source.decode("utf-8"), nl=False)
    run(go)


@contextlib.contextmanager
def _executor(kind: str) -> Any:
    if kind == WAMR.function_type:
        from ..executors.wasm import WasmExecutor

        yield WasmExecutor()
        return
    from ..executors.python import PythonExecutor

    with PythonExecutor(always_log=True) as executor:
        yield executor
