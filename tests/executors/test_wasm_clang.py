"""C functions compiled by clang the way Teaclave's examples are (spec §5.8).

``clang --target=wasm32 -nostdlib -Wl,--no-entry -Wl,--export-all -Wl,--allow-undefined``
(plus ``-O2 -fno-builtin`` so loops do not become calls to an absent ``memset``).
Skipped only when clang/wasm-ld are missing locally; under CI (``CI`` set) that
is a failure, since CI installs them (scripts/system-packages.txt).
"""

from __future__ import annotations

import pytest
import wasmtime
from _wasm_support import MemoryTaskIO, build_c_modules, invocation, vectors_dir

from confide.executors.wasm import WasmExecutor

HOST_IMPORTS = {
    "teaclave_open_input",
    "teaclave_create_output",
    "teaclave_read_file",
    "teaclave_write_file",
    "teaclave_close_file",
}


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return build_c_modules(tmp_path_factory.mktemp("wasm-c"))


@pytest.fixture(scope="module")
def executor() -> WasmExecutor:
    return WasmExecutor()


def test_c_modules_import_only_the_host_file_api(build: dict[str, bytes]) -> None:
    engine = wasmtime.Engine()
    for payload in build.values():
        imports = {(i.module, i.name) for i in wasmtime.Module(engine, payload).imports}
        assert imports <= {("env", name) for name in HOST_IMPORTS}


def test_c_simple_add_gives_seven_for_three_and_four(
    build: dict[str, bytes], executor: WasmExecutor
) -> None:
    payload = build["simple_add"]
    assert executor.run(invocation(payload, {"adder1": "3", "adder2": "4"})) == "7"
    assert executor.run(invocation(payload, {"adder2": "-10", "adder1": "4"})) == "-6"
    assert executor.run(invocation(payload, {"adder1": "3"})) == "-1"  # argc < 4


# --- ordered set intersection over two real input files ---

PSI_ARGS = {"input1": "psi0", "input2": "psi1", "output1": "out1", "output2": "out2"}


def _psi_expected(left: bytes, right: bytes) -> tuple[int, bytes, bytes]:
    lines1 = [line for line in left.split(b"\n") if line]
    lines2 = [line for line in right.split(b"\n") if line]
    both = set(lines1) & set(lines2)
    marks1 = b"".join(b"1" if line in both else b"0" for line in lines1)
    marks2 = b"".join(b"1" if line in both else b"0" for line in lines2)
    return sum(1 for line in lines1 if line in both), marks1, marks2


def _psi_io(left: bytes, right: bytes, **kw: set[str]) -> MemoryTaskIO:
    return MemoryTaskIO(inputs={"psi0": left, "psi1": right}, outputs={"out1", "out2"}, **kw)


@pytest.fixture(scope="module")
def psi_inputs() -> tuple[bytes, bytes]:
    base = vectors_dir() / "teaclave" / "functions" / "ordered_set_intersect"
    return (base / "psi0.txt").read_bytes(), (base / "psi1.txt").read_bytes()


def test_c_psi_intersects_the_teaclave_vectors(
    build: dict[str, bytes], executor: WasmExecutor, psi_inputs: tuple[bytes, bytes]
) -> None:
    left, right = psi_inputs
    common, marks1, marks2 = _psi_expected(left, right)
    assert common > 0  # the vectors do overlap: the test is not vacuous
    task_io = _psi_io(left, right)
    assert executor.run(invocation(build["ordered_psi"], PSI_ARGS, task_io)) == str(common)
    assert task_io.written == {"out1": marks1, "out2": marks2}


def test_c_psi_sees_a_mutated_line_as_no_match(
    build: dict[str, bytes], executor: WasmExecutor, psi_inputs: tuple[bytes, bytes]
) -> None:
    left, right = psi_inputs
    lines = right.split(b"\n")
    shared = next(i for i, line in enumerate(lines) if line in left.split(b"\n"))
    lines[shared] = lines[shared][:-1] + (b"0" if lines[shared][-1:] != b"0" else b"1")
    mutated = b"\n".join(lines)
    common, marks1, marks2 = _psi_expected(left, mutated)
    assert common == _psi_expected(left, right)[0] - 1
    task_io = _psi_io(left, mutated)
    assert executor.run(invocation(build["ordered_psi"], PSI_ARGS, task_io)) == str(common)
    assert task_io.written == {"out1": marks1, "out2": marks2}


def test_c_psi_gets_minus_one_for_a_corrupted_input(
    build: dict[str, bytes], executor: WasmExecutor, psi_inputs: tuple[bytes, bytes]
) -> None:
    task_io = _psi_io(*psi_inputs, corrupted={"psi1"})
    assert executor.run(invocation(build["ordered_psi"], PSI_ARGS, task_io)) == "-3"
    assert task_io.written == {}


def test_c_psi_cannot_write_an_unassigned_output(
    build: dict[str, bytes], executor: WasmExecutor, psi_inputs: tuple[bytes, bytes]
) -> None:
    task_io = _psi_io(*psi_inputs)
    arguments = dict(PSI_ARGS, output2="somebody_elses_output")
    assert executor.run(invocation(build["ordered_psi"], arguments, task_io)) == "-5"
    assert "somebody_elses_output" not in task_io.written
