"""``confide function test --mesapy`` and ``confide function translate``: MesaPy-mode
functions locally, through the installed entry point, exactly as registration stages them."""

from __future__ import annotations

import json
from pathlib import Path

from tests._entry_point import run_confide
from tests.mesapy_payloads import payload

PY2 = """\
def entrypoint(argv):
    data = teaclave_open("ledger", "rb").read()
    print "fields", len(data.split(','))
    return str(7 / 2)
"""


def test_function_test_runs_python2_in_mesapy_mode(tmp_path: Path) -> None:
    fn, data = tmp_path / "fn.py", tmp_path / "ledger.csv"
    fn.write_text(PY2)
    data.write_bytes(b"a,1\nb,2\n")
    proc = run_confide("function", "test", fn, "--mesapy", "--input", f"ledger={data}",
                       timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "3"
    assert "[INFO function] fields 3" in proc.stderr


def test_without_mesapy_the_same_file_is_python3(tmp_path: Path) -> None:
    fn, data = tmp_path / "fn.py", tmp_path / "ledger.csv"
    fn.write_text(PY2)
    data.write_bytes(b"a,1\n")
    proc = run_confide("function", "test", fn, "--input", f"ledger={data}", "--json",
                       timeout=120)
    assert proc.returncode == 5 and json.loads(proc.stdout)["result"] == "MESAPY_EXEC_ERROR"
    # a declaration in the payload chooses MesaPy mode without the flag, as on the platform
    fn.write_text("# confide: mesapy\n" + PY2)
    proc = run_confide("function", "test", fn, "--input", f"ledger={data}", timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "3", proc.stderr


def test_untranslatable_payload_is_a_usage_error_naming_the_line(tmp_path: Path) -> None:
    fn = tmp_path / "fn.py"
    fn.write_text("def entrypoint(argv):\n    return 1 +* 2\n")
    proc = run_confide("function", "test", fn, "--mesapy", timeout=120)
    assert proc.returncode == 1, proc.stderr  # usage
    assert "line 2" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_confide("function", "translate", fn, timeout=60)
    assert proc.returncode == 1 and "line 2" in proc.stderr


def test_translate_prints_what_the_sandbox_runs(tmp_path: Path) -> None:
    fn = tmp_path / "logreg.py"
    fn.write_bytes(payload("logreg"))
    proc = run_confide("function", "translate", fn, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "for i in range(iterations):" in proc.stdout and "xrange" not in proc.stdout
    assert "raise ValueError(" in proc.stdout
    assert proc.stdout.count("\n") == payload("logreg").count(b"\n")
    assert "# division: Python 2" in proc.stderr
    missing = run_confide("function", "translate", tmp_path / "nope.py", timeout=60)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
