"""MesaPy mode's registration side: dialect choice, fissix translation, staging."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confide.mesapy import (
    MAGIC,
    MAX_SOURCE_BYTES,
    PYTHON2,
    PYTHON3,
    TranslationError,
    declared_dialect,
    pack,
    resolve,
    sandbox_program,
    staged_payload,
    translate,
    unpack,
)

PAYLOADS = Path(__file__).resolve().parents[1] / "mesapy_payloads"

PY2 = b"""import _numpypy as np
def entrypoint(argv):
    print "hello", argv[1]
    for k, v in {}.iteritems():
        pass
    try:
        x = 7 / 2
    except ZeroDivisionError, e:
        return e.message
    return str(x)
"""


def test_python2_payload_translates_line_for_line() -> None:
    t = translate(PY2)
    text = t.source.decode()
    assert 'print("hello", argv[1])' in text and "except ZeroDivisionError as e:" in text
    assert ".items()" in text and "iteritems" not in text
    assert text.count("\n") == PY2.count(b"\n")  # line numbers are kept
    assert t.true_division is False
    compile(t.source, "<function>", "exec")


def test_translation_is_deterministic() -> None:
    for path in sorted(PAYLOADS.glob("*.py2")):
        first, second = translate(path.read_bytes()), translate(path.read_bytes())
        assert first == second and pack(first) == pack(second)


def test_future_division_is_detected() -> None:
    assert translate(b"from __future__ import division\nx = 1 / 2\n").true_division is True


def test_future_print_function_payload_translates() -> None:
    src = b"from __future__ import print_function\nprint('a', end='')\nd = {}.iteritems()\n"
    text = translate(src).source.decode()
    assert "print('a', end='')" in text and ".items()" in text


@pytest.mark.parametrize(("payload", "line", "what"), [
    (b"def entrypoint(argv):\n    return 1\nprint('a', end='')\n", 3, "'='"),
    (b"x = 1\ny = (\n", 3, "EOF"),
    (b"def f():\n  x = 1\n    y = 2\n", 3, ""),
    (b"def f():\n  x = 1\n y = 2\n", 3, "unindent does not match"),
    (b"if x:\nreturn 1\n", 2, "invalid Python 2 syntax"),
    (b"x = 1\ny = 2 +* 3\n", 2, "'*'"),
    (b"x = 1\n\xff\xfe = 2\n", 2, "utf-8"),
    (b"x = 1\ny = '\x00'\n", 2, "null bytes"),
])
def test_untranslatable_payload_is_refused_naming_the_line(payload: bytes, line: int,
                                                             what: str) -> None:
    with pytest.raises(TranslationError) as caught:
        translate(payload)
    assert caught.value.line == line
    assert f"line {line}: " in str(caught.value) and what in str(caught.value)
    assert str(caught.value).startswith("MesaPy payload does not translate to Python 3")


def test_translation_that_python3_cannot_compile_is_refused() -> None:
    # valid Python 2 that 2to3 leaves alone but Python 3 rejects
    with pytest.raises(TranslationError, match=r"line 2: .*after translation"):
        translate(b"x = 1\nnonlocal x\n")


def test_oversized_or_too_deeply_nested_payloads_are_refused_not_crashing() -> None:
    with pytest.raises(TranslationError, match="at most 262144"):
        translate(b"x = 1\n" * (MAX_SOURCE_BYTES // 6 + 1))
    for hostile in (b"x = " + b"(" * 3000 + b"1" + b")" * 3000 + b"\n",
                    b"x = 1" + b" + 1" * 40000 + b"\n"):
        assert len(hostile) <= MAX_SOURCE_BYTES
        with pytest.raises(TranslationError):
            translate(hostile)
    # too large to translate, but Python 3 through Teaclave's API: stays Python 3
    big = b"def entrypoint(argv):\n    return 'x'\n" + b"y = 1\n" * (MAX_SOURCE_BYTES // 6)
    assert resolve(big, PYTHON2).dialect == PYTHON3


def test_tabs_mixed_with_spaces_indent_as_in_python2() -> None:
    src = b'def f():\n        x = """a\n\tb"""\n\treturn x\n'
    text = translate(src).source.decode()
    # the code line's tab becomes 8 spaces; the string keeps its tab
    assert text == 'def f():\n        x = """a\n\tb"""\n        return x\n'
    namespace: dict[str, object] = {}
    exec(compile(text, "<f>", "exec"), namespace)
    assert namespace["f"]() == "a\n\tb"  # type: ignore[operator]


def test_coding_cookie_is_honoured() -> None:
    src = "# -*- coding: latin-1 -*-\ns = 'caf\xe9'\n".encode("latin-1")
    assert "café" in translate(src).source.decode()
    with pytest.raises(TranslationError, match="unknown source encoding"):
        translate(b"# coding: no-such-codec\nx = 1\n")


@pytest.mark.parametrize(("payload", "dialect"), [
    (b"#!/usr/bin/env python2\nx = 1\n", PYTHON2),
    (b"#!/usr/bin/python2.7\nx = 1\n", PYTHON2),
    (b"# -*- coding: utf-8 -*-\n# confide: mesapy\nx = 1\n", PYTHON2),
    (b"#!/usr/bin/env python3\nx = 1\n", PYTHON3),
    (b"# confide: python3\nx = 1\n", PYTHON3),
    (b"x = 1\n# confide: mesapy\n", PYTHON2),
    (b"x = 1\ny = 2\n# confide: mesapy\n", None),  # only the first two lines count
    (b"x = 1\n", None),
])
def test_declared_dialect(payload: bytes, dialect: str | None) -> None:
    assert declared_dialect(payload) == dialect


def test_resolve_uses_the_api_default_without_a_declaration() -> None:
    assert resolve(b"x = 1\n", PYTHON3).dialect == PYTHON3
    r = resolve(b"x = 1\n", PYTHON2)
    assert r.dialect == PYTHON2 and r.translation.startswith(MAGIC)
    assert resolve(b"#!/usr/bin/env python3\nprint 1\n", PYTHON2).dialect == PYTHON3


def test_resolve_falls_back_to_python3_only_for_an_undeclared_python3_payload() -> None:
    py3 = b"def entrypoint(argv):\n    print('x', end='')\n"
    assert resolve(py3, PYTHON2).dialect == PYTHON3
    with pytest.raises(TranslationError, match="line 3"):
        resolve(b"# confide: mesapy\n" + py3, PYTHON2)
    with pytest.raises(TranslationError, match="line 2"):
        resolve(b"x = 1\ny = 2 +* 3\n", PYTHON2)  # neither Python 2 nor Python 3


def test_declared_mesapy_in_a_python3_default_is_translated() -> None:
    r = resolve(b"# confide: mesapy\n" + PY2, PYTHON3)
    assert r.dialect == PYTHON2 and unpack(r.translation) == translate(b"# confide: mesapy\n" + PY2)


def test_staged_payload() -> None:
    t = pack(translate(PY2))
    assert staged_payload(PYTHON2, PY2, t) == t
    assert staged_payload(PYTHON3, b"x = 1\n", b"") == b"x = 1\n"
    spoof = MAGIC + b"division=floor\nx = 1\n"
    assert staged_payload(PYTHON3, spoof, b"") == b"\x00" + spoof
    assert unpack(b"\x00" + spoof) is None


@pytest.mark.parametrize("staged", [MAGIC, MAGIC + b"division=maybe\nx", MAGIC + b"nonsense"])
def test_malformed_staged_payload_is_refused(staged: bytes) -> None:
    with pytest.raises(ValueError, match="malformed"):
        unpack(staged)
    with pytest.raises(ValueError, match="malformed"):
        sandbox_program(staged)


def test_sandbox_program_is_python3_and_none_for_python3_payloads() -> None:
    program = sandbox_program(pack(translate(PY2)))
    assert program is not None
    compile(program, "<function>", "exec")
    assert sandbox_program(b"def entrypoint(argv):\n    return 1\n") is None


def test_grammar_is_built_in_memory(tmp_path: Path) -> None:
    """No pickled grammar is read from (or written to) the user's cache directory."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "HOME": str(tmp_path)}
    code = ("from confide.mesapy import translate\n"
            "assert b'print(1)' in translate(b'print 1\\n').source\n")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_payload_translates_or_is_refused_with_a_translation_error(data: st.DataObject) -> None:
    """Registration never fails with anything but TranslationError (no internal errors)."""
    base = (PAYLOADS / "ledger.py2").read_bytes()
    kind = data.draw(st.sampled_from(["mutate", "text", "bytes"]))
    if kind == "mutate":
        pos = data.draw(st.integers(0, len(base)))
        cut = data.draw(st.integers(0, 20))
        insert = data.draw(st.sampled_from([b"", b"\t", b" ", b"\n", b"(", b")", b"'", b'"""',
                                            b":", b",", b"\\", b"\x00", b"\xff", b"#", b"`"]))
        payload = base[:pos] + insert + base[pos + cut:]
    elif kind == "text":
        payload = data.draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    else:
        payload = data.draw(st.binary(max_size=200))
    try:
        t = translate(payload)
    except TranslationError:
        return
    compile(t.source, "<function>", "exec")
