"""MesaPy mode's runtime in process (the sandbox tests run it for real):
Python 2 semantics piece by piece, and hostile or odd input handled."""

from __future__ import annotations

import io
import marshal as real_marshal
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from confide.mesapy import _runtime as rt
from confide.mesapy import translate


@pytest.fixture(autouse=True)
def _numpy_printing() -> Iterator[None]:
    saved = np.get_printoptions()
    yield
    np.set_printoptions(**saved)


class _Files:
    """A stand-in for the harness's file API."""

    def __init__(self, inputs: dict[str, bytes]) -> None:
        self.inputs = inputs
        self.written: dict[str, io.BytesIO] = {}

    def open(self, name: Any, mode: Any) -> Any:
        if mode == "rb" and name in self.inputs:
            return io.BufferedReader(io.BytesIO(self.inputs[name]))  # type: ignore[arg-type]
        if mode == "wb":
            out = self.written[name] = io.BytesIO()
            out.close = lambda: None  # type: ignore[method-assign]
            return out
        raise RuntimeError("fileio_init: teaclave_ffi_error")


def run(source: str, argv: list[str] | None = None, files: _Files | None = None) -> object:
    t = translate(source.encode())
    entry = rt.load(t.source, t.true_division, (files or _Files({})).open)
    return entry(argv or [])


def test_division_semantics_table() -> None:
    assert rt.div(7, 2) == 3 and rt.div(-7, 2) == -4 and rt.div(7, 2.0) == 3.5
    assert rt.div(True, 2) == 0
    assert rt.div(np.int64(7), 2) == 3
    assert rt.div(np.arange(4), 2).tolist() == [0, 0, 1, 1]
    assert rt.div(np.arange(4.0), 2).tolist() == [0.0, 0.5, 1.0, 1.5]
    with pytest.raises(ZeroDivisionError):
        rt.div(1, 0)
    a = np.arange(4)
    assert rt.idiv(a, 2) is a and a.tolist() == [0, 0, 1, 1]  # in place, as /= on an array


def test_augmented_division_evaluates_its_target_once() -> None:
    src = (
        "calls = []\n"
        "def key():\n"
        "    calls.append(1)\n"
        "    return 'k'\n"
        "class Box(object):\n"
        "    def __init__(self): self.v = 9\n"
        "boxes = []\n"
        "def box():\n"
        "    boxes.append(1)\n"
        "    return holder\n"
        "holder = Box()\n"
        "def entrypoint(argv):\n"
        "    d = {'k': 9}\n"
        "    d[key()] /= 2\n"
        "    box().v /= 2\n"
        "    import _numpypy\n"
        "    a = _numpypy.multiarray.arange(6)\n"
        "    a[1:3] /= 2\n"
        "    return '%s %s %s %s %s' % (d['k'], len(calls), holder.v, len(boxes), list(a))\n"
    )
    assert run(src) == "4 1 4 1 [0, 0, 1, 3, 4, 5]"


def test_round_is_python2s() -> None:
    assert rt.py2_round(2.5) == 3.0 and rt.py2_round(-2.5) == -3.0 and rt.py2_round(0.5) == 1.0
    assert rt.py2_round(2.675, 2) == 2.67  # the exact binary value is below the tie
    assert rt.py2_round(1234.5, -2) == 1200.0
    assert isinstance(rt.py2_round(3), float)
    assert rt.py2_round(1e300) == 1e300 and rt.py2_round(float("inf")) == float("inf")
    assert rt.py2_round(1.5, 400) == 1.5 and rt.py2_round(1.5, -400) == 0.0


def test_float_str_is_python2s() -> None:
    cases = {0.1 + 0.2: "0.3", 1.0: "1.0", 1e22: "1e+22", 1 / 3: "0.333333333333",
             float("inf"): "inf", -0.0: "-0.0", 123456789012345.0: "1.23456789012e+14"}
    for value, text in cases.items():
        assert rt.py2_float_str(value) == text
    assert rt.Py2Str(1.5) == "1.5" and rt.Py2Str(b"x", "ascii") == "x" and rt.Py2Str() == ""
    kind = str
    assert isinstance("x", rt.Py2Str) and kind == rt.Py2Str and issubclass(str, rt.Py2Str)


def test_floats_formatted_into_strings_are_python2s() -> None:
    src = ("def entrypoint(argv):\n"
           "    c = 0.1 + 0.2\n"
           "    fmt = '%s/%s'\n"
           "    return ('%s %r %.3f %d %s|' % (c, c, c, 7 % 3, 1.0) + fmt % (c, 2)\n"
           "            + ' {} {:.2f} {x}'.format(c, c, x=c) + ' %(a)s' % {'a': c}\n"
           "            + ' ' + str(-7 % 3) + ' ' + str(7.5 % 2))\n")
    assert run(src) == "0.3 0.30000000000000004 0.300 1 1.0|0.3/2 0.3 0.30 0.3 0.3 2 1.5"
    assert rt.py2_mod(7, 3) == 1 and rt.py2_format("{}", 1 / 3) == "0.333333333333"
    assert isinstance(rt.Py2Float(0.5), float) and repr(rt.Py2Float(0.1 + 0.2)) == repr(0.1 + 0.2)


def test_encode_and_decode_of_byte_strings_and_the_string_module() -> None:
    import hashlib

    src = ("# -*- coding: utf-8 -*-\n"
           "import string, hashlib\n"
           "def entrypoint(argv):\n"
           "    u = u'caf\\xe9'\n"
           "    b = u.encode('utf-8')\n"
           "    h = 'ab'.encode('hex')\n"
           "    return repr((len(b), b.decode('utf-8') == u, h, h.decode('hex'),\n"
           "                 'x'.encode('base64'), string.join(['a', 'b'], '-'),\n"
           "                 string.atoi('ff', 16), string.letters[:3], string.split('a b'),\n"
           "                 hashlib.md5(b).hexdigest()[:6], argv[1].decode('utf-8') == u))\n")
    digest = hashlib.md5("café".encode()).hexdigest()[:6]
    assert run(src, ["k", "café"]) == (f"(5, True, '6162', 'ab', 'eA==\\n', 'a-b', 255, 'abc', "
                                       f"['a', 'b'], '{digest}', True)")
    with pytest.raises(UnicodeEncodeError):
        rt.py2_encode("é")  # Python 2's default codec is ASCII
    assert rt.py2_decode(b"\xc3\xa9", "utf-8") == "é"  # a real bytes object: Python 3's rule


def test_str_subclasses_of_the_function_stay_subclasses() -> None:
    src = ("class Name(str):\n"
           "    def shout(self): return self.upper() + '!'\n"
           "def entrypoint(argv):\n"
           "    n = Name('ab')\n"
           "    return '%s %s %s %s %s %s' % (type(n).__name__, n.shout(), isinstance(n, Name),\n"
           "        isinstance('x', Name), isinstance(n, str), Name == str)\n")
    assert run(src) == "Name AB! True False True False"
    assert str.join(",", ["a", "b"]) == "a,b" and rt.Py2Str.join(",", ["a", "b"]) == "a,b"
    assert {rt.Py2Str: 1}[str] == 1  # the same dictionary key as str


def test_byte_strings_and_results() -> None:
    assert rt.to_str(b"\xff\x00a") == "\xff\x00a"
    assert rt.to_bytes("\xff\x00a") == b"\xff\x00a" and rt.to_bytes("✓") == "✓".encode()
    assert rt.to_bytes(memoryview(b"ab")) == b"ab"
    assert rt._result("caf\xc3\xa9") == "café"  # bytes that are UTF-8 come back as those bytes
    assert rt._result("café") == "café"  # text (a u'' literal) is text
    assert rt._result(None) is None


def test_file_api_over_the_harness() -> None:
    files = _Files({"in": b"a,b\n\xe9,2\n"})
    src = (
        "def entrypoint(argv):\n"
        "    f = teaclave_open('in', 'rb')\n"
        "    first = f.readline()\n"
        "    rest = [l for l in f]\n"
        "    with teaclave_open('out', 'wb') as o:\n"
        "        o.writelines([first, rest[0], u'\\u2713'])\n"
        "    try:\n"
        "        teaclave_open('nope', 'rb')\n"
        "    except RuntimeError as e:\n"
        "        return '%r %r %s' % (first, rest, e.message)\n"
    )
    # (repr shows the byte as its character: a documented difference from Python 2)
    assert run(src, files=files) == "'a,b\\n' ['\xe9,2\\n'] fileio_init: teaclave_ffi_error"
    assert files.written["out"].getvalue() == b"a,b\n\xe9,2\n\xe2\x9c\x93"


def test_message_of_exceptions() -> None:
    assert rt.message(ValueError("x")) == "x"
    assert rt.message(ValueError("x", "y")) == ""
    assert rt.message(ValueError()) == ""
    e = ValueError("x")
    e.message = "own"  # type: ignore[attr-defined]
    assert rt.message(e) == "own"
    src = ("def entrypoint(argv):\n"
           "    message = 'outside'\n"
           "    try:\n"
           "        raise KeyError('k')\n"
           "    except KeyError, e:\n"
           "        inner = e.message\n"
           "    return inner + ' ' + message\n")
    assert run(src) == "k outside"


def test_marshal_round_trips_what_functions_store() -> None:
    m = rt.marshal_module()
    arr = np.arange(6.0).reshape(2, 3).T  # not contiguous: stored in C order
    blob = m.dumps({"w": arr, "b": np.float64(0.5), "n": 3, "s": "x\xe9", "l": [1.5, (2, "y")]})
    assert isinstance(blob, str)
    back = m.loads(blob)
    assert np.frombuffer(rt.to_bytes(back["w"])).tolist() == arr.flatten().tolist()
    assert np.frombuffer(rt.to_bytes(back["b"]))[0] == 0.5
    assert back["n"] == 3 and back["s"] == "x\xe9" and back["l"] == [1.5, (2, "y")]
    assert real_marshal.loads(rt.to_bytes(blob))["n"] == 3  # plain marshal underneath
    with pytest.raises((ValueError, EOFError, TypeError)):
        m.loads("\x00garbage")


def test_byte_string_modules_take_and_give_byte_strings() -> None:
    b = rt.bytes_module("binascii")
    assert b.hexlify("\xff\x00a") == "ff0061" and b.unhexlify("ff00") == "\xff\x00"
    import binascii

    unsigned = binascii.crc32(b"\xff" * 7)
    assert unsigned >= 1 << 31 and b.crc32("\xff" * 7) == unsigned - (1 << 32)  # signed
    assert b.crc32("hello") == binascii.crc32(b"hello") < 1 << 31
    h = rt.bytes_module("hashlib")
    digest = h.sha256("abc")
    digest.update("\xe9")
    import hashlib

    assert digest.hexdigest() == hashlib.sha256(b"abc\xe9").hexdigest()
    assert digest.digest() == rt.to_str(hashlib.sha256(b"abc\xe9").digest())
    assert h.new("md5", "a").hexdigest() == hashlib.md5(b"a").hexdigest()
    s = rt.bytes_module("struct")
    packed = s.pack("<Ih2s", 7, -1, "ab")
    assert packed == "\x07\x00\x00\x00\xff\xffab" and s.unpack("<Ih2s", packed) == (7, -1, "ab")
    assert s.Struct("<H").unpack("\x01\x00") == (1,)
    with pytest.raises(s.error):
        s.unpack("<I", "ab")
    z, b64 = rt.bytes_module("zlib"), rt.bytes_module("base64")
    assert z.decompress(z.compress("x" * 100)) == "x" * 100
    assert b64.b64decode(b64.b64encode("\xff\x00")) == "\xff\x00"
    src = ("import binascii, hashlib\n"
           "def entrypoint(argv):\n"
           "    return binascii.hexlify(hashlib.sha1(argv[1]).digest()[:2])\n")
    assert run(src, ["k", "x"]) == hashlib.sha1(b"x").hexdigest()[:4]


def test_numpypy_modules() -> None:
    mods = rt.numpypy()
    assert set(mods) == {"_numpypy", "_numpypy.multiarray", "_numpypy.umath"}
    ma, um = mods["_numpypy.multiarray"], mods["_numpypy.umath"]
    assert str(ma.array([1.0, 2.5])) == "[ 1.   2.5]"  # numpy 1.13 printing
    assert ma.fromstring("1, 2,3", dtype="float64", sep=",").tolist() == [1.0, 2.0, 3.0]
    buf = ma.frombuffer(rt.to_str(np.array([1.0, 2.0]).tobytes()))
    buf[0] = 5.0  # a copy: writable, as a fresh array
    assert buf.tolist() == [5.0, 2.0]
    assert um.divide(np.array([7, 8]), 2).tolist() == [3, 4]
    assert um.divide(np.array([7.0]), 2).tolist() == [3.5]
    for name in rt.UMATH:
        assert callable(getattr(um, name))


def test_imports_inside_the_function() -> None:
    src = ("import marshal, _numpypy.multiarray\n"
           "from teaclave import open as topen\n"
           "import json\n"
           "def entrypoint(argv):\n"
           "    return '%s %s %s' % (type(marshal.dumps(1)).__name__,\n"
           "                         _numpypy.multiarray.array([1]).dtype, json.dumps([1]))\n")
    assert run(src) == "str int64 [1]"
    with pytest.raises(ModuleNotFoundError):
        run("import _numpypy.nosuch\ndef entrypoint(argv):\n    pass\n")


def test_missing_entrypoint_and_argv() -> None:
    with pytest.raises(KeyError):
        run("x = 1\n")
    assert run("def entrypoint(argv):\n    return repr(argv)\n", ["k", "é"]) == "['k', 'é']"
