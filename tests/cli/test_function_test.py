"""``confide function test``: a Python function runs locally in the platform's sandbox, through
the installed entry point; its prints and an exception's traceback reach the developer."""

from __future__ import annotations

import json
from pathlib import Path

from tests._entry_point import run_confide

GOOD = """\
def entrypoint(argv):
    args = dict(zip(argv[::2], argv[1::2]))
    with teaclave_open("data", "rb") as f:
        rows = f.read().decode().splitlines()
    print("read", len(rows), "rows")
    with teaclave_open("result", "wb") as out:
        out.write(("\\n".join(r.upper() for r in rows)).encode())
    return "n=" + args["n"]
"""

BAD = """\
def helper(rows):
    return rows[10]

def entrypoint(argv):
    print("about to fail")
    return helper([])
"""


def test_runs_a_function_on_local_files_in_the_sandbox(tmp_path: Path) -> None:
    fn, data, result = tmp_path / "fn.py", tmp_path / "data.csv", tmp_path / "out.csv"
    fn.write_text(GOOD)
    data.write_text("a\nb\n")
    proc = run_confide("function", "test", fn, "--input", f"data={data}", "--output",
                       f"result={result}", "--arg", "n=3", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "n=3"
    assert "[INFO function] read 2 rows" in proc.stderr
    assert result.read_text() == "A\nB"


def test_an_exception_gives_the_developer_a_traceback_and_exit_5(tmp_path: Path) -> None:
    fn = tmp_path / "bad.py"
    fn.write_text(BAD)
    proc = run_confide("function", "test", fn, "--json", timeout=120)
    assert proc.returncode == 5
    out = json.loads(proc.stdout)
    assert out["ok"] is False and out["result"] == "MESAPY_EXEC_ERROR"
    text = "\n".join(out["log"])
    assert "about to fail" in text
    assert 'File "<function>", line 2, in helper' in text and "return rows[10]" in text
    assert "IndexError: list index out of range" in text
    assert "traceback" in proc.stderr and "Traceback (most recent" not in proc.stderr.split(
        "\n")[0]


def test_bad_arguments_and_missing_inputs_are_usage_errors(tmp_path: Path) -> None:
    fn = tmp_path / "fn.py"
    fn.write_text(GOOD)
    proc = run_confide("function", "test", fn, "--input", "data", timeout=60)
    assert proc.returncode == 1 and "expected name=path" in proc.stderr
    proc = run_confide("function", "test", fn, "--input", f"data={tmp_path / 'nope'}",
                       timeout=60)
    assert proc.returncode == 1 and "no such file" in proc.stderr
    proc = run_confide("function", "test", fn, "--arguments", "{bad", timeout=60)
    assert proc.returncode == 1 and "--arguments is not valid JSON" in proc.stderr
    for p in (proc,):
        assert "Traceback" not in p.stderr


def test_an_unwritten_output_is_reported(tmp_path: Path) -> None:
    fn, data = tmp_path / "fn.py", tmp_path / "d"
    fn.write_text("def entrypoint(argv):\n    return 'done'\n")
    data.write_text("x")
    proc = run_confide("function", "test", fn, "--output", f"result={tmp_path / 'r'}",
                       timeout=120)
    assert proc.returncode == 5 and "outputs not written: result" in proc.stderr
