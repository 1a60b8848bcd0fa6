"""The MesaPy contract (spec §5.7, §5.4, §5.2, Q17, Q21, Q29) on sandboxed CPython 3."""

from __future__ import annotations

import threading
import time

import pytest
from pysandbox_support import (
    MemoryTaskIO,
    bwrap_children,
    executor,
    function_pids,
    invocation,
    process_exists,
)

from confide.executors._sandbox import SandboxFailure
from confide.executors.python import (
    MESAPY_ERROR_BUFFER_TOO_SHORT,
    MESAPY_EXEC_ERROR,
    PythonExecutor,
)
from confide.invocation import CancelledError, FunctionError

EX = executor()


def run(body: str, arguments: dict[str, object] | None = None, **kw: object) -> str:
    return EX.run(invocation(body, arguments, **kw))  # type: ignore[arg-type]


def test_argv_is_flattened_sorted_list_of_str() -> None:
    src = (
        "def entrypoint(argv):\n"
        "    assert all(type(a) is str for a in argv)\n"
        "    return repr(argv)\n"
    )
    args = {"b": 1, "a": "x", "c": [1, 2], "d": 1.0, "e": True}
    assert run(src, args) == repr(["a", "x", "b", "1", "c", "[1,2]", "d", "1.0", "e", "true"])


def test_non_ascii_arguments_and_result_round_trip() -> None:
    src = "def entrypoint(argv):\n    return argv[1] + ' ✓'\n"
    assert run(src, {"message": "héllo"}) == "héllo ✓"


def test_none_result_is_empty_string() -> None:
    assert run("def entrypoint(argv):\n    return None\n") == ""


@pytest.mark.parametrize(
    "source",
    [
        "def entrypoint(argv):\n    raise ValueError('boom')\n",
        "def entrypoint(argv):\n    assert False\n",
        "def entrypoint(argv) return 1\n",  # syntax error
        "def not_the_entrypoint(argv):\n    return 'x'\n",
        "def entrypoint(argv):\n    import sys; sys.exit(0)\n",
        "def entrypoint(argv):\n    return 5\n",  # not a string
        "def entrypoint(argv):\n    return b'caf\\xc3\\xa9'\n",  # non-ASCII byte string
        "def entrypoint(argv):\n    return '\\ud800'\n",  # not encodable as UTF-8
        "raise KeyboardInterrupt\n",
    ],
)
def test_function_exception_is_finished_ok_mesapy_exec_error(source: str) -> None:
    assert run(source) == MESAPY_EXEC_ERROR


def test_payload_that_is_not_utf8_is_mesapy_exec_error() -> None:
    assert EX.run(invocation(b"def entrypoint(argv):\n    return '\xff'\n")) == MESAPY_EXEC_ERROR


def test_ascii_byte_string_result_is_accepted_like_python2_str() -> None:
    assert run("def entrypoint(argv):\n    return b'plain'\n") == "plain"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("'x' * 20480", "x" * 20480),
        ("'x' * 20481", MESAPY_ERROR_BUFFER_TOO_SHORT),
        ("'é' * 10240", "é" * 10240),  # 20 480 UTF-8 bytes
        ("'é' * 10240 + 'x'", MESAPY_ERROR_BUFFER_TOO_SHORT),
    ],
)
def test_result_buffer_is_20480_utf8_bytes(expr: str, expected: str) -> None:
    assert run(f"def entrypoint(argv):\n    return {expr}\n") == expected


@pytest.mark.parametrize("mode", ["r", "w", "ab", "rb+", "wb+", "", "x"])
def test_open_modes_other_than_rb_wb_are_not_supported(mode: str) -> None:
    src = (
        "def entrypoint(argv):\n"
        "    try:\n"
        f"        teaclave_open('in', {mode!r})\n"
        "    except RuntimeError as e:\n"
        "        return str(e)\n"
    )
    io = MemoryTaskIO({"in": b"data"}, ["in"])
    assert run(src, task_io=io) == "Teaclave Not Supported"


@pytest.mark.parametrize(("name", "mode"), [("nope", "rb"), ("nope", "wb"), ("out", "rb")])
def test_unknown_name_raises_fileio_init_error(name: str, mode: str) -> None:
    src = (
        "def entrypoint(argv):\n"
        "    try:\n"
        f"        teaclave_open({name!r}, {mode!r})\n"
        "    except RuntimeError as e:\n"
        "        return str(e)\n"
    )
    io = MemoryTaskIO({"in": b"data"}, ["out"])
    assert run(src, task_io=io) == "fileio_init: teaclave_ffi_error"


def test_corrupted_input_is_unopenable_but_others_work_q29() -> None:
    src = (
        "def entrypoint(argv):\n"
        "    try:\n"
        "        teaclave_open('train', 'rb')\n"
        "        first = 'opened'\n"
        "    except RuntimeError as e:\n"
        "        first = str(e)\n"
        "    return first + ' | ' + teaclave_open('test', 'rb').read().decode()\n"
    )
    io = MemoryTaskIO({"test": b"fine"}, corrupted=["train"])
    assert run(src, task_io=io) == "fileio_init: teaclave_ffi_error | fine"


def test_input_file_api_read_readline_readlines_iteration() -> None:
    src = (
        "from teaclave import open\n"
        "def entrypoint(argv):\n"
        "    out = []\n"
        "    with open('in', 'rb') as f:\n"
        "        out.append(f.read(3))\n"
        "        out.append(f.readline())\n"
        "        out.append(f.readlines())\n"
        "        out.append(f.read())\n"
        "    out.append(f.closed)\n"
        "    out.append([line for line in teaclave_open('in', 'rb')])\n"
        "    g = teaclave_open('in', 'rb')\n"
        "    out.append([hasattr(g, a) for a in ('seek', 'tell', 'fileno', 'write')])\n"
        "    g.close()\n"
        "    return repr(out)\n"
    )
    io = MemoryTaskIO({"in": b"abcdef\nline2\nline3\n"})
    expected = [
        b"abc",
        b"def\n",
        [b"line2\n", b"line3\n"],
        b"",
        True,
        [b"abcdef\n", b"line2\n", b"line3\n"],
        [False, False, False, False],
    ]
    assert run(src, task_io=io) == repr(expected)


def test_outputs_are_written_through_the_worker() -> None:
    src = (
        "def entrypoint(argv):\n"
        "    with teaclave_open('a', 'wb') as f:\n"
        "        f.write(b'bytes ')\n"
        "        f.write('and text é')\n"
        "    g = teaclave_open('b', 'wb')\n"
        "    g.write(b'x' * 200000)\n"  # never closed: flushed when the function returns
        "    return 'ok'\n"
    )
    io = MemoryTaskIO(outputs=["a", "b"])
    assert run(src, task_io=io) == "ok"
    assert io.written == {"a": "bytes and text é".encode(), "b": b"x" * 200000}


def test_creating_an_output_again_starts_it_afresh() -> None:
    src = (
        "def entrypoint(argv):\n"
        "    f = teaclave_open('a', 'wb')\n"
        "    f.write(b'first')\n"
        "    g = teaclave_open('a', 'wb')\n"
        "    g.write(b'second')\n"
        "    try:\n"
        "        f.write(b'stale')\n"
        "    except ValueError:\n"
        "        return 'stale handle closed'\n"
    )
    io = MemoryTaskIO(outputs=["a"])
    assert run(src, task_io=io) == "stale handle closed"
    assert io.written == {"a": b"second"}
    assert io.creates == ["a", "a"]


def test_output_written_before_an_exception_is_kept() -> None:
    src = (
        "def entrypoint(argv):\n"
        "    teaclave_open('a', 'wb').write(b'partial')\n"
        "    raise RuntimeError('late failure')\n"
    )
    io = MemoryTaskIO(outputs=["a"])
    assert run(src, task_io=io) == MESAPY_EXEC_ERROR
    assert io.written == {"a": b"partial"}


def test_handles_run_out_after_1023_opens() -> None:
    src = (
        "def entrypoint(argv):\n"
        "    n = 0\n"
        "    try:\n"
        "        while True:\n"
        "            teaclave_open('in', 'rb').close()\n"
        "            n += 1\n"
        "    except RuntimeError as e:\n"
        "        return f'{n} {e}'\n"
    )
    io = MemoryTaskIO({"in": b"x"})
    assert run(src, task_io=io) == "1023 fileio_init: teaclave_ffi_error"


def test_function_cannot_modify_its_sealed_input() -> None:
    src = (
        "import os\n"
        "def entrypoint(argv):\n"
        "    out = []\n"
        "    for fd in range(3, 1024):\n"
        "        try:\n"
        "            target = os.readlink(f'/proc/self/fd/{fd}')\n"
        "        except OSError:\n"
        "            continue\n"
        "        if target.startswith('/memfd:input'):\n"
        "            try:\n"
        "                os.pwrite(fd, b'EVIL', 0)\n"
        "                out.append('written')\n"
        "            except OSError as e:\n"
        "                out.append(str(e.errno))\n"
        "    return ' '.join(out) + ' ' + teaclave_open('in', 'rb').read().decode()\n"
    )
    io = MemoryTaskIO({"in": b"original"})
    assert run(src, task_io=io) == "1 original"


def test_numpy_is_importable_and_computes() -> None:
    src = (
        "import numpy as np\n"
        "def entrypoint(argv):\n"
        "    a = np.arange(12, dtype=np.float64).reshape(3, 4)\n"
        "    return f'{(a @ a.T).trace():.1f} {np.linalg.det(np.eye(3) * 2):.1f}'\n"
    )
    assert run(src) == "506.0 8.0"  # sum of squares 0..11; det(2I)


def test_large_input_is_read_intact() -> None:
    data = bytes(range(256)) * 20000  # 5 MB
    src = (
        "import hashlib\n"
        "def entrypoint(argv):\n"
        "    return hashlib.sha256(teaclave_open('in', 'rb').read()).hexdigest()\n"
    )
    import hashlib

    assert run(src, task_io=MemoryTaskIO({"in": data})) == hashlib.sha256(data).hexdigest()


def test_wrong_executor_type_is_function_not_available() -> None:
    with pytest.raises(FunctionError) as info:
        EX.run(invocation("x", executor_type="builtin"))
    assert info.value.reason == "function not available: (Builtin, MesaPy)"


def test_cancel_kills_the_sandbox_promptly_and_the_worker_survives() -> None:
    cancel = threading.Event()
    inv = invocation("import time\ndef entrypoint(argv):\n    time.sleep(60)\n", cancel=cancel)
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(CancelledError):
        EX.run(inv)
    assert time.monotonic() - started < 1.5
    assert run("def entrypoint(argv):\n    return 'next'\n") == "next"


def test_cancel_leaves_no_process_behind_not_even_a_zombie() -> None:
    cancel = threading.Event()
    inv = invocation("import time\ndef entrypoint(argv):\n    time.sleep(60)\n", cancel=cancel)
    seen: list[int] = []

    def watch() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            bwraps = bwrap_children()
            functions = function_pids(bwraps)
            if functions:
                seen.extend(bwraps + functions)
                break
            time.sleep(0.01)
        cancel.set()

    threading.Thread(target=watch).start()
    with pytest.raises(CancelledError):
        EX.run(inv)
    assert len(seen) == 2
    assert [pid for pid in seen if process_exists(pid)] == []  # the function was reaped by bwrap


def test_cancel_before_start_never_starts_the_function() -> None:
    cancel = threading.Event()
    cancel.set()
    io = MemoryTaskIO(outputs=["a"])
    src = "def entrypoint(argv):\n    teaclave_open('a', 'wb')\n"
    with pytest.raises(CancelledError):
        EX.run(invocation(src, task_io=io, cancel=cancel))
    assert io.creates == []


def test_time_limit_reason_names_the_limit() -> None:
    ex = executor(python_wall_seconds=0.5)
    with pytest.raises(FunctionError) as info:
        ex.run(invocation("import time\ndef entrypoint(argv):\n    time.sleep(30)\n"))
    assert info.value.reason == "Runtime Error: time limit exceeded (0.5 s)"


def test_memory_limit_reason_names_the_limit() -> None:
    ex = executor(python_memory_bytes=256 * 1024 * 1024)
    with pytest.raises(FunctionError) as info:
        ex.run(invocation("def entrypoint(argv):\n    return len(bytearray(1 << 30))\n"))
    assert info.value.reason == "Runtime Error: memory limit exceeded (256 MiB)"


def test_sandbox_unavailable_refuses_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from confide.executors._sandbox import SandboxUnavailable

    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(SandboxUnavailable) as info:
        PythonExecutor().run(invocation("def entrypoint(argv):\n    return 'ran'\n"))
    assert "bwrap not found" in info.value.reason


def test_missing_bwrap_binary_at_run_time_is_unavailable_not_unsandboxed() -> None:
    from dataclasses import replace

    from confide.executors._sandbox import SandboxUnavailable

    config = replace(EX.sandbox_config(), bwrap="/nonexistent/bwrap")
    with pytest.raises(SandboxUnavailable):
        PythonExecutor(config=config).run(invocation("def entrypoint(argv):\n    return 'x'\n"))


LOGGING_SRC = (
    "import logging, sys\n"
    "def entrypoint(argv):\n"
    "    print('hello', 'world')\n"
    "    print('two\\nlines')\n"
    "    logging.getLogger('mymod').warning('careful %d', 3)\n"
    "    logging.getLogger('mymod').info('fyi')\n"
    "    logging.getLogger('mymod').debug('not captured')\n"
    "    logging.getLogger().error('root error')\n"
    "    sys.stderr.write('to stderr\\n')\n"
    "    print('no newline at end', end='')\n"
    "    return 'done'\n"
)


def test_save_log_true_captures_the_functions_lines_q21() -> None:
    logs: list[str] = []
    assert run(LOGGING_SRC, {"save_log": "true"}, logs=logs) == "done"
    assert logs == [
        "[INFO function] hello world",
        "[INFO function] two",
        "[INFO function] lines",
        "[WARN mymod] careful 3",
        "[INFO mymod] fyi",
        "[ERROR root] root error",
        "[WARN function] to stderr",
        "[INFO function] no newline at end",
    ]


@pytest.mark.parametrize("value", ["false", True, "TRUE", None])
def test_save_log_needs_the_json_string_true(value: object) -> None:
    logs: list[str] = []
    args = {} if value is None else {"save_log": value}
    assert run(LOGGING_SRC, args, logs=logs) == "done"
    assert logs == []


CHATTY = (
    "def entrypoint(argv):\n"
    "    for i in range(int(argv[1])):\n"
    "        print('x' * 50)\n"
    "    return 'ok'\n"
)


def test_log_at_the_line_cap_is_kept_and_cap_plus_one_fails_the_task() -> None:
    ex = executor(max_log_lines=5, python_max_log_line_chars=10)
    logs: list[str] = []
    assert ex.run(invocation(CHATTY, {"n": 5, "save_log": "true"}, logs=logs)) == "ok"
    assert logs == ["[INFO function] " + "x" * 10] * 5  # long lines are cut, not split
    with pytest.raises(SandboxFailure) as info:
        ex.run(invocation(CHATTY, {"n": 6, "save_log": "true"}, logs=[]))
    assert (info.value.cause, info.value.reason) == (
        "log", "Runtime Error: log exceeds the 5-line log cap (limits.max_log_lines)")


def test_log_at_the_byte_cap_is_kept_and_cap_plus_one_fails_the_task() -> None:
    line = len("[INFO function] " + "x" * 50)
    ex = executor(max_log_bytes=3 * line)
    logs: list[str] = []
    assert ex.run(invocation(CHATTY, {"n": 3, "save_log": "true"}, logs=logs)) == "ok"
    assert len(logs) == 3
    ex = executor(max_log_bytes=3 * line - 1)
    with pytest.raises(SandboxFailure) as info:
        ex.run(invocation(CHATTY, {"n": 3, "save_log": "true"}, logs=[]))
    assert info.value.reason == (
        f"Runtime Error: log exceeds the {3 * line - 1}-byte log cap "
        "(limits.max_log_bytes)")


def test_log_without_save_log_costs_nothing() -> None:
    ex = executor(max_log_lines=1)
    assert ex.run(invocation(CHATTY, {"n": 100}, logs=[])) == "ok"


READ_ALL = "def entrypoint(argv):\n    return str(len(teaclave_open('in', 'rb').read()))\n"


def test_inputs_at_the_input_cap_are_staged_and_cap_plus_one_refused() -> None:
    ex = executor(max_input_bytes=10)
    assert ex.run(invocation(READ_ALL, task_io=MemoryTaskIO({"in": b"x" * 10}))) == "10"
    with pytest.raises(SandboxFailure) as info:
        ex.run(invocation(READ_ALL, task_io=MemoryTaskIO({"in": b"x" * 11})))
    assert (info.value.cause, info.value.reason) == (
        "input", "Runtime Error: inputs exceed the 10-byte staged input cap "
                 "(limits.max_input_bytes)")


def test_output_at_the_output_cap_is_written_and_cap_plus_one_refused() -> None:
    ex = executor(max_output_file_bytes=1000)
    src = "def entrypoint(argv):\n    teaclave_open('o', 'wb').write(b'x' * int(argv[1]))\n"
    io = MemoryTaskIO(outputs=["o"])
    assert ex.run(invocation(src, {"n": 1000}, io)) == ""
    assert io.written == {"o": b"x" * 1000}
    with pytest.raises(SandboxFailure) as info:
        ex.run(invocation(src, {"n": 1001}, MemoryTaskIO(outputs=["o"])))
    assert (info.value.cause, info.value.reason) == (
        "output", "Runtime Error: output 'o' exceeds the 1000-byte per-file output cap "
                  "(limits.max_output_file_bytes)")
