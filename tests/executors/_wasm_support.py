"""Shared helpers for the wasm executor tests: an in-memory TaskIO and WAT builders."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, BinaryIO

import pytest
import wasmtime

from confide.invocation import (
    CorruptedInput,
    FunctionSpec,
    InvalidInputName,
    InvalidOutputName,
    Invocation,
)


def vectors_dir() -> Path:
    """``/work/shared/vectors`` (or ``$CONFIDE_VECTORS``, or ``<repo>/../shared/vectors``)."""
    env = os.environ.get("CONFIDE_VECTORS")
    candidates = [Path(env)] if env else []
    candidates += [
        Path("/work/shared/vectors"),
        Path(__file__).resolve().parents[2].parent / "shared" / "vectors",
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("test vectors not found; set CONFIDE_VECTORS")


C_SOURCES = Path(__file__).parent / "wasm_src"


def _toolchain_or_skip() -> str:
    clang = shutil.which("clang")
    if clang is None or shutil.which("wasm-ld") is None:
        reason = "clang and wasm-ld (Debian: clang, lld) are needed to build the C test modules"
        if os.environ.get("CI"):
            pytest.fail(reason + " and CI must have them")
        pytest.skip(reason)
    return clang


def build_c_modules(out_dir: Path) -> dict[str, bytes]:
    """Compile every ``wasm_src/*.c`` as Teaclave's examples are (spec §5.8):
    ``clang --target=wasm32 -nostdlib -Wl,--no-entry -Wl,--export-all
    -Wl,--allow-undefined`` (plus ``-O2 -fno-builtin`` so loops do not become
    calls to an absent ``memset``); modules by source stem.

    Skips when clang/wasm-ld are missing locally; under CI (``CI`` set) that is
    a failure, since CI installs them (scripts/system-packages.txt).
    """
    clang = _toolchain_or_skip()
    modules: dict[str, bytes] = {}
    for source in sorted(C_SOURCES.glob("*.c")):
        target = out_dir / (source.stem + ".wasm")
        subprocess.run(
            [
                clang,
                "--target=wasm32",
                "-nostdlib",
                "-O2",
                "-fno-builtin",
                "-Wl,--no-entry",
                "-Wl,--export-all",
                "-Wl,--allow-undefined",
                "-o",
                str(target),
                str(source),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        modules[source.stem] = target.read_bytes()
    return modules


class _Output(io.BytesIO):
    def __init__(self, sink: dict[str, bytes], name: str) -> None:
        super().__init__()
        self._sink = sink
        self._name = name

    def close(self) -> None:
        if not self.closed:
            self._sink[self._name] = self.getvalue()
        super().close()


class MemoryTaskIO:
    """TaskIO over dicts; ``corrupted`` names fail their integrity check on open."""

    def __init__(
        self,
        inputs: dict[str, bytes] | None = None,
        outputs: set[str] | None = None,
        corrupted: set[str] | None = None,
    ) -> None:
        self.inputs = dict(inputs or {})
        self.outputs = set(outputs or ())
        self.corrupted = set(corrupted or ())
        self.written: dict[str, bytes] = {}
        self.opened: list[str] = []

    def input_names(self) -> set[str]:
        return set(self.inputs)

    def output_names(self) -> set[str]:
        return set(self.outputs)

    def open_input(self, name: str) -> BinaryIO:
        if name not in self.inputs:
            raise InvalidInputName(name)
        if name in self.corrupted:
            raise CorruptedInput(name, f"/tmp/{name}")
        self.opened.append(name)
        return io.BytesIO(self.inputs[name])

    def create_output(self, name: str) -> BinaryIO:
        if name not in self.outputs:
            raise InvalidOutputName(name)
        return _Output(self.written, name)


def invocation(
    payload: bytes | bytearray,
    arguments: dict[str, Any] | None = None,
    task_io: MemoryTaskIO | None = None,
    task_id: str = "task-1",
) -> Invocation:
    return Invocation(
        task_id=task_id,
        function=FunctionSpec("function-1", "wasm-test", "wamr", bytes(payload)),
        arguments=dict(arguments or {}),
        io=task_io if task_io is not None else MemoryTaskIO(),
    )


IMPORTS = """
  (import "env" "teaclave_open_input" (func $open_input (param i32) (result i32)))
  (import "env" "teaclave_create_output" (func $create_output (param i32) (result i32)))
  (import "env" "teaclave_read_file" (func $read (param i32 i32 i32) (result i32)))
  (import "env" "teaclave_write_file" (func $write (param i32 i32 i32) (result i32)))
  (import "env" "teaclave_close_file" (func $close (param i32) (result i32)))
"""

#: Names at fixed addresses in the data segment of :func:`entry_module`.
NAME_IN = 0  # "in\0"
NAME_OUT = 16  # "out\0"
NAME_MISSING = 32  # "missing\0"
NAME_BAD = 48  # "bad\0"
SCRATCH = 1024


def entry_module(body: str, *, locals_: str = "", extra: str = "", pages: int = 1) -> bytes:
    """A module with the five imports, one exported memory, names in data, and
    ``entrypoint`` whose body is ``body`` (WAT instructions leaving an i32)."""
    wat = f"""(module
{IMPORTS}
  (memory (export "memory") {pages})
  (data (i32.const {NAME_IN}) "in\\00")
  (data (i32.const {NAME_OUT}) "out\\00")
  (data (i32.const {NAME_MISSING}) "missing\\00")
  (data (i32.const {NAME_BAD}) "bad\\00")
{extra}
  (func (export "entrypoint") (param $argc i32) (param $argv i32) (result i32) {locals_}
{body})
)"""
    return bytes(wasmtime.wat2wasm(wat))


#: C-like ``atoi`` on a NUL-terminated decimal string, as WAT.
ATOI = """
  (func $atoi (param $p i32) (result i32) (local $n i32) (local $d i32)
    (block $done (loop $next
      (local.set $d (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)))
      (br_if $done (i32.gt_u (local.get $d) (i32.const 9)))
      (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 10)) (local.get $d)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $next)))
    (local.get $n))
"""

#: ``entrypoint`` = atoi(argv[1]) + atoi(argv[3]) (Teaclave's wasm_c_simple_add).
ADD_MODULE = entry_module(
    "(i32.add (call $atoi (i32.load offset=4 (local.get $argv)))"
    " (call $atoi (i32.load offset=12 (local.get $argv))))",
    extra=ATOI,
)

#: Copies input "in" to output "out" in 7-byte reads; returns the byte count.
COPY_MODULE = entry_module(
    f"""
    (local.set $in (call $open_input (i32.const {NAME_IN})))
    (local.set $out (call $create_output (i32.const {NAME_OUT})))
    (if (i32.or (i32.lt_s (local.get $in) (i32.const 0)) (i32.lt_s (local.get $out) (i32.const 0)))
      (then (return (i32.const -100))))
    (block $eof (loop $more
      (local.set $n (call $read (local.get $in) (i32.const {SCRATCH}) (i32.const 7)))
      (br_if $eof (i32.le_s (local.get $n) (i32.const 0)))
      (drop (call $write (local.get $out) (i32.const {SCRATCH}) (local.get $n)))
      (local.set $total (i32.add (local.get $total) (local.get $n)))
      (br $more)))
    (drop (call $close (local.get $in)))
    (drop (call $close (local.get $out)))
    (local.get $total)""",
    locals_="(local $in i32) (local $out i32) (local $n i32) (local $total i32)",
)

#: Writes every argv string followed by "\\n" to output "out"; returns argc.
ARGV_DUMP_MODULE = entry_module(
    f"""
    (local.set $out (call $create_output (i32.const {NAME_OUT})))
    (block $done (loop $each
      (br_if $done (i32.ge_u (local.get $i) (local.get $argc)))
      (local.set $s (i32.load (i32.add (local.get $argv) (i32.shl (local.get $i) (i32.const 2)))))
      (local.set $len (i32.const 0))
      (block $end (loop $scan
        (br_if $end (i32.eqz (i32.load8_u (i32.add (local.get $s) (local.get $len)))))
        (local.set $len (i32.add (local.get $len) (i32.const 1)))
        (br $scan)))
      (drop (call $write (local.get $out) (local.get $s) (local.get $len)))
      (i32.store8 (i32.const {SCRATCH}) (i32.const 10))
      (drop (call $write (local.get $out) (i32.const {SCRATCH}) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $each)))
    (drop (call $close (local.get $out)))
    (local.get $argc)""",
    locals_="(local $out i32) (local $i i32) (local $s i32) (local $len i32)",
)

LOOP_FOREVER = entry_module("(loop $spin (br $spin)) (i32.const 0)")


_FLOOD_WAT = """(module
  (import "env" "teaclave_create_output" (func $create (param i32) (result i32)))
  (import "env" "teaclave_write_file" (func $write (param i32 i32 i32) (result i32)))
  (import "env" "teaclave_close_file" (func $close (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "out\\00")
  (func $atoi (param $p i32) (result i32) (local $n i32) (local $d i32)
    (block $done (loop $next
      (local.set $d (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)))
      (br_if $done (i32.gt_u (local.get $d) (i32.const 9)))
      (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 10)) (local.get $d)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $next)))
    (local.get $n))
  (func (export "entrypoint") (param $argc i32) (param $argv i32) (result i32)
    (local $n i32) (local $out i32) (local $written i32)
    (local.set $n (call $atoi (i32.load offset=4 (local.get $argv))))
    (local.set $out (call $create (i32.const 0)))
    (block $done (loop $more
      (br_if $done (i32.ge_u (local.get $written) (local.get $n)))
      (drop (call $write (local.get $out) (i32.const 1024) (i32.const BLOCK)))
      (local.set $written (i32.add (local.get $written) (i32.const BLOCK)))
      (br $more)))
    (drop (call $close (local.get $out)))
    (i32.const 0)))"""


def flood_module(block: int) -> bytes:
    """A wasm function writing argv[1] bytes to output "out" in ``block``-byte
    calls, ignoring every result (as the attacker's 1.31 GB function did)."""
    return bytes(wasmtime.wat2wasm(_FLOOD_WAT.replace("BLOCK", str(block))))
