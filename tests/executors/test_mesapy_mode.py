"""MesaPy mode in the real sandbox: Python 2.7 / micronumpy functions, translated
as registration translates them, run by the ``mesapy`` executor; and Python 3
functions unchanged beside them."""

from __future__ import annotations

import marshal

import numpy as np
import pytest
from pysandbox_support import MemoryTaskIO, executor, invocation

from confide.executors.python import MESAPY_ERROR_BUFFER_TOO_SHORT, MESAPY_EXEC_ERROR
from confide.mesapy import MAGIC, pack, translate
from tests.mesapy_payloads import payload, table, training_set

EX = executor()


def staged(source: str | bytes) -> bytes:
    """What the scheduler stages for a MesaPy-mode function."""
    return pack(translate(source.encode() if isinstance(source, str) else source))


def run_mesapy(source: str | bytes, arguments: dict[str, object] | None = None,
               task_io: MemoryTaskIO | None = None, logs: list[str] | None = None) -> str:
    return EX.run(invocation(staged(source), arguments, task_io, logs=logs))


# --- the MesaPy-style functions -----------------------------------------------------------


def test_numeric_work_on_micronumpy_arrays() -> None:
    data, a = table()
    logs: list[str] = []
    io = MemoryTaskIO({"table": data})
    result = run_mesapy(payload("column_stats"), {"buckets": "5", "save_log": "true"}, io, logs)
    n, m = a.shape
    mean = a.sum(0) / n
    std = np.sqrt(((a - mean) ** 2).sum(0) / (n - 1))
    gram = a.T.dot(a)
    expected = [f"col{j} mean={mean[j]:.6f} std={std[j]:.6f} max={a[:, j].max():.6f}"
                for j in range(m)]
    expected.append(f"gram00={gram[0, 0]:.6f} trace={gram.trace():.6f}")
    half = [int(v) // 2 for v in a[:3, 0]]
    last = float(a[-1, -1])
    expected.append(f"half={half} per_bucket={n // 5} last={format(last, '.12g')}")
    assert result == "\n".join(expected)
    assert logs == [f"[INFO function] read {n} rows of {m} columns"]


def test_csv_parsed_from_byte_strings() -> None:
    ledger = b"alice,10.5\nbob,3\nalice,2.25\ncarol,20\nbroken line\nbob,x\ndave,-1\n"
    io = MemoryTaskIO({"ledger": ledger}, outputs=["totals"])
    result = run_mesapy(payload("ledger"), {}, io)
    assert io.written["totals"] == b"carol,20.00\nalice,12.75\nbob,3.00\ndave,-1.00\n"
    average = format((12.75 + 3 + 20 - 1) / 4, ".12g")
    assert result == (f"accounts=4 skipped=2 first=carol average={average} "
                      "missing=fileio_init: teaclave_ffi_error")


def test_state_saved_by_one_task_is_read_by_another() -> None:
    train, data, expected = training_set()
    io = MemoryTaskIO({"train": train}, outputs=["model"])
    assert run_mesapy(payload("logreg"), {"operation": "train", "iterations": 300},
                      io) == "trained 2 features on 80 rows"
    model = marshal.loads(io.written["model"])  # arrays stored as their raw buffers
    assert set(model) == {"w", "b", "low", "high", "n"} and isinstance(model["w"], bytes)
    assert len(model["w"]) == 2 * 8 and model["n"] == 2
    io2 = MemoryTaskIO({"model": io.written["model"], "data": data})
    result = run_mesapy(payload("logreg"), {"operation": "predict"}, io2)
    assert result.split() == [str(v) for v in expected]
    assert 0 < sum(expected) < len(expected)  # both classes occur


def test_the_function_fails_cleanly_on_an_unknown_operation() -> None:
    assert run_mesapy(payload("logreg"), {"operation": "nope"}) == MESAPY_EXEC_ERROR


# --- Python 2 semantics, one by one ---------------------------------------------------------


def test_reads_are_python2_byte_strings_and_writes_return_the_same_bytes() -> None:
    src = (
        "def entrypoint(argv):\n"
        "    d = teaclave_open('in', 'rb').read()\n"
        "    assert type(d) == str and isinstance(d, str) and not isinstance(d, bytes)\n"
        "    assert d[0] == '\\xff' and ord(d[1]) == 0\n"
        "    teaclave_open('out', 'wb').write(d + 'tail')\n"
        "    return '%d %r' % (len(d), d[2:5])\n"
    )
    blob = b"\xff\x00abc\xe9"
    io = MemoryTaskIO({"in": blob}, outputs=["out"])
    assert run_mesapy(src, {}, io) == "6 'abc'"
    assert io.written["out"] == blob + b"tail"


def test_non_ascii_arguments_are_byte_strings_and_come_back_unchanged() -> None:
    src = "def entrypoint(argv):\n    return '%d:%s' % (len(argv[1]), argv[1])\n"
    assert run_mesapy(src, {"m": "é✓"}) == "5:é✓"  # 2 + 3 UTF-8 bytes, as in Python 2


def test_integer_division_floors_unless_the_future_import_says_otherwise() -> None:
    body = (
        "def entrypoint(argv):\n"
        "    x = 7\n"
        "    x /= 2\n"
        "    d = {'k': 9}\n"
        "    d['k'] /= 2\n"
        "    return repr((7 / 2, -7 / 2, 7.0 / 2, x, d['k']))\n"
    )
    assert run_mesapy(body) == "(3, -4, 3.5, 3, 4)"
    assert run_mesapy("from __future__ import division\n" + body) == "(3.5, -3.5, 3.5, 3.5, 4.5)"


def test_python2_syntax_and_builtins() -> None:
    src = (
        "import itertools\n"
        "class Money(object):\n"
        "    def __init__(self, v): self.v = v\n"
        "    def __div__(self, k): return Money(self.v / k)\n"
        "    def __nonzero__(self): return self.v != 0\n"
        "def entrypoint(argv):\n"
        "    print 'logged', 1.0 / 3\n"
        "    d = {'b': 2, 'a': 1}\n"
        "    keys = d.keys(); keys.sort()\n"
        "    pairs = list(itertools.izip(xrange(2), 'xy'))\n"
        "    items = sorted([3, 1, 2], cmp=lambda a, b: cmp(b, a))\n"
        "    l = [1, 3, 2]; l.sort(cmp=lambda a, b: cmp(a, b))\n"
        "    n = long(5) + int(u'1')\n"
        "    ok = bool(Money(0)) is False and (Money(9) / 2).v == 4\n"
        "    s = unicode('x') + str(0.1 + 0.2) + str(2.0) + str(1e22)\n"
        "    return '%s %s %s %s %s %s %s %s %s' % (keys, pairs, items, l, n, ok, s,\n"
        "                                   round(2.5), round(-0.5))\n"
    )
    logs: list[str] = []
    result = run_mesapy(src, {"save_log": "true"}, logs=logs)
    assert result == ("['a', 'b'] [(0, 'x'), (1, 'y')] [3, 2, 1] [1, 2, 3] 6 True "
                      "x0.32.01e+22 3.0 -1.0")
    assert logs == ["[INFO function] logged 0.333333333333"]


def test_numpypy_surface() -> None:
    src = (
        "import _numpypy\n"
        "from _numpypy import multiarray, umath\n"
        "from _numpypy.multiarray import array, dot\n"
        "def entrypoint(argv):\n"
        "    a = _numpypy.multiarray.array([[1, 2], [3, 4]])\n"
        "    f = array(['1.5', '2.5'], dtype='float64')\n"
        "    z = multiarray.zeros((2, 2)) + multiarray.ones((2, 2), dtype='int32')\n"
        "    r = multiarray.arange(6).reshape(2, 3)\n"
        "    checks = [\n"
        "        str(a.dtype), str(f.dtype), str(a / 2), str(umath.divide(a, 2)),\n"
        "        str(a * 1.0 / 2), str(dot(a, a)), str(a.sum()), str(f.mean()),\n"
        "        str(a[1, 0]), str(a[:, 1]), str(r[1]), str(r.T.shape), str(z),\n"
        "        str(umath.exp(multiarray.zeros(2))), str(umath.sqrt(f * f)),\n"
        "        repr(multiarray.frombuffer(f.tobytes())),\n"
        "    ]\n"
        "    return '|'.join(checks)\n"
    )
    assert run_mesapy(src).split("|") == [
        "int64", "float64", "[[0 1]\n [1 2]]", "[[0 1]\n [1 2]]", "[[ 0.5  1. ]\n [ 1.5  2. ]]",
        "[[ 7 10]\n [15 22]]", "10", "2.0", "3", "[2 4]", "[3 4 5]", "(3, 2)",
        "[[ 1.  1.]\n [ 1.  1.]]", "[ 1.  1.]", "[ 1.5  2.5]", "array([ 1.5,  2.5])",
    ]


def test_byte_string_modules_in_the_sandbox() -> None:
    import hashlib
    import struct

    src = (
        "import binascii, hashlib, struct\n"
        "def entrypoint(argv):\n"
        "    data = teaclave_open('in', 'rb').read()\n"
        "    n, = struct.unpack('<I', data[:4])\n"
        "    out = struct.pack('<I', n + 1) + hashlib.sha256(data).digest()\n"
        "    teaclave_open('out', 'wb').write(out)\n"
        "    return '%d %s %d' % (n, binascii.hexlify(data[4:]), binascii.crc32(data))\n"
    )
    blob = struct.pack("<I", 41) + b"\xff\xfe"
    io = MemoryTaskIO({"in": blob}, outputs=["out"])
    import binascii

    crc = binascii.crc32(blob)
    crc = crc - (1 << 32) if crc >= 1 << 31 else crc
    assert run_mesapy(src, {}, io) == f"41 fffe {crc}"
    assert io.written["out"] == struct.pack("<I", 42) + hashlib.sha256(blob).digest()


def test_an_unknown_numpypy_name_is_an_import_error() -> None:
    src = "from _numpypy import nosuch\ndef entrypoint(argv):\n    return 'x'\n"
    assert run_mesapy(src) == MESAPY_EXEC_ERROR


def test_exceptions_and_limits_keep_the_mesapy_contract() -> None:
    assert run_mesapy("def entrypoint(argv):\n    raise ValueError, 'x'\n") == MESAPY_EXEC_ERROR
    assert run_mesapy("def entrypoint(argv):\n    return 'x' * 20481\n") == \
        MESAPY_ERROR_BUFFER_TOO_SHORT
    assert run_mesapy("def entrypoint(argv):\n    return None\n") == ""
    assert run_mesapy("x = 1\n") == MESAPY_EXEC_ERROR  # no entrypoint


def test_traceback_in_the_log_names_the_payload_line() -> None:
    src = "def entrypoint(argv):\n    x = 1\n    print 'before'\n    return {}['missing']\n"
    logs: list[str] = []
    assert run_mesapy(src, {"save_log": "true"}, logs=logs) == MESAPY_EXEC_ERROR
    text = "\n".join(logs)
    assert "[INFO function] before" in text
    assert 'File "<function>", line 4, in entrypoint' in text and "KeyError" in text


def test_modes_run_in_the_same_sandbox_without_new_powers() -> None:
    src = ("def entrypoint(argv):\n"
           "    import os\n"
           "    try:\n"
           "        open('/etc/shadow').read()\n"
           "        return 'read host file'\n"
           "    except (IOError, OSError):\n"
           "        return 'refused uid=%d' % os.getuid()\n")
    result = run_mesapy(src)
    assert result.startswith("refused uid=") and result != "refused uid=0"


def test_a_malformed_mesapy_payload_is_an_exec_error() -> None:
    assert EX.run(invocation(MAGIC + b"nonsense\nx")) == MESAPY_EXEC_ERROR


# --- Python 3 functions keep today's behaviour ----------------------------------------------


def test_python3_functions_are_unchanged() -> None:
    src = (
        "def entrypoint(argv):\n"
        "    d = teaclave_open('in', 'rb').read()\n"
        "    assert type(d) is bytes and d.split(b',') == [b'1', b'2']\n"
        "    return repr((7 / 2, round(2.5), str(0.1 + 0.2), argv[1]))\n"
    )
    io = MemoryTaskIO({"in": b"1,2"})
    assert EX.run(invocation(src, {"m": "é"}, io)) == "(3.5, 2, '0.30000000000000004', 'é')"


@pytest.mark.parametrize("source", [
    "def entrypoint(argv):\n    print 'x'\n",  # Python 2 syntax is not translated for Python 3
    "import _numpypy\ndef entrypoint(argv):\n    return 'x'\n",
])
def test_python3_functions_get_no_python2_help(source: str) -> None:
    assert EX.run(invocation(source)) == MESAPY_EXEC_ERROR


def test_a_python3_payload_that_looks_staged_still_fails_as_before() -> None:
    # the scheduler stages such a payload behind one more NUL (confide.mesapy.staged_payload)
    assert EX.run(invocation(b"\x00" + MAGIC + b"division=floor\nx = 1\n")) == MESAPY_EXEC_ERROR


def test_a_prestarted_sandbox_runs_a_mesapy_function() -> None:
    """Hardened and numpy imported before the job: the runtime still loads under seccomp."""
    with executor(prestart=1) as pooled:
        assert pooled.wait_prestarted(30.0)
        (waiting,) = pooled.prestarted_pids()
        data, a = table()
        io = MemoryTaskIO({"table": data})
        result = pooled.run(invocation(staged(payload("column_stats")), {"buckets": "3"}, io))
        assert result.startswith(f"col0 mean={a[:, 0].mean():.6f}")
        assert waiting not in pooled.prestarted_pids()  # the job went to the waiting sandbox
