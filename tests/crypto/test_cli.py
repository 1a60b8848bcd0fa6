"""``confide encrypt`` / ``confide decrypt`` with teaclave_cli's options, run through the
installed ``confide`` entry point (the command a user types); only the two progress-bar
tests, which replace rich's Progress, drive the same root app in-process."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from rich.progress import Progress, TaskID
from typer.testing import CliRunner

from confide.cli import _crypto, app

from .._entry_point import run_confide
from .conftest import PFS_FIXTURES

K16 = "00" * 16
K32 = "11" * 32


def _run(*args: str | Path) -> tuple[int, str, str]:
    """``confide ARGS`` through the installed entry point."""
    proc = run_confide(*args)
    return proc.returncode, proc.stdout, proc.stderr


def _run_in_process(*args: str | Path) -> int:
    """The same root app in this process (for tests that patch the progress bar)."""
    return CliRunner().invoke(app, [str(a) for a in args]).exit_code


def test_decrypts_teaclave_fixture_and_prints_cmac(vectors: Path, tmp_private: Path) -> None:
    fx = PFS_FIXTURES[0]
    base = vectors / "teaclave" / "functions"
    out = tmp_private / "train.txt"
    code, stdout, _ = _run(
        "decrypt", "-a", "teaclave-file-128", "-k", K16,
        "-i", base / fx.enc, "-o", out, "-c",
    )  # fmt: skip
    assert code == 0
    assert stdout.strip() == fx.cmac
    assert out.read_bytes() == (base / fx.plain).read_bytes()


def test_encrypts_like_teaclave_cli_for_aes_gcm(vectors: Path, tmp_private: Path) -> None:
    base = vectors / "teaclave" / "functions" / "gbdt_training"
    out = tmp_private / "train.aes_gcm_128"
    code, stdout, stderr = _run(
        "encrypt", "--algorithm", "aes-gcm-128", "--key", K16, "--iv", "01" * 12,
        "--input-file", base / "train.txt", "--output-file", out, "--print-cmac",
    )  # fmt: skip
    assert code == 0
    assert stdout.strip() == "592f1e607649d89ff2aa8a2841a57cad"
    assert out.read_bytes() == (base / "train.aes_gcm_128").read_bytes()
    assert "warning" in stderr and "same key and IV" in stderr


@pytest.mark.parametrize(
    ("algorithm", "key", "iv"),
    [
        ("aes-gcm-128", K16, "03" * 12),
        ("aes-gcm-256", K32, "02" * 12),
        ("teaclave-file-128", K16, ""),
        ("confide-stream-256", K32, ""),
    ],
)
def test_round_trip_each_algorithm(tmp_private: Path, algorithm: str, key: str, iv: str) -> None:
    plain = tmp_private / "plain.bin"
    plain.write_bytes(os.urandom(50_000))
    enc, back = tmp_private / "data.enc", tmp_private / "back.bin"
    iv_args = ["--iv", iv] if iv else []
    code, cmac, _ = _run(
        "encrypt", "-a", algorithm, "-k", key, *iv_args, "-i", plain, "-o", enc, "-c"
    )
    assert code == 0 and len(bytes.fromhex(cmac.strip())) == 16
    code, cmac2, _ = _run(
        "decrypt", "-a", algorithm, "-k", key, *iv_args, "-i", enc, "-o", back,
        "-c", "--expected-cmac", cmac.strip(),
    )  # fmt: skip
    assert code == 0 and cmac2 == cmac
    assert back.read_bytes() == plain.read_bytes()


def test_readme_encrypt_and_decrypt_lines_work_with_relative_names(tmp_private: Path) -> None:
    # README: `confide encrypt -a aes-gcm-128 -k … --iv … -i f -o f.enc`, then decrypt.
    (tmp_private / "f").write_bytes(b"id1 : 10\nid2 : 20\n")
    common = ("-a", "aes-gcm-128", "-k", K16, "--iv", "04" * 12)
    enc = run_confide("encrypt", *common, "-i", "f", "-o", "f.enc", cwd=tmp_private)
    assert enc.returncode == 0, enc.stderr
    dec = run_confide("decrypt", *common, "-i", "f.enc", "-o", "f.out", cwd=tmp_private)
    assert dec.returncode == 0, dec.stderr
    assert (tmp_private / "f.out").read_bytes() == b"id1 : 10\nid2 : 20\n"
    assert (tmp_private / "f.enc").stat().st_mode & 0o077 == 0
    assert sorted(p.name for p in tmp_private.iterdir()) == ["f", "f.enc", "f.out"]


def test_default_algorithm_is_confide_stream(tmp_private: Path) -> None:
    plain = tmp_private / "p"
    plain.write_bytes(b"hello")
    enc = tmp_private / "p.enc"
    assert _run("encrypt", "-k", K32, "-i", plain, "-o", enc)[0] == 0
    assert enc.read_bytes()[:4] == b"CNFS"


def test_failed_decryption_leaves_no_output(tmp_private: Path) -> None:
    plain = tmp_private / "p"
    plain.write_bytes(os.urandom(10_000))
    enc = tmp_private / "p.enc"
    _run("encrypt", "-a", "aes-gcm-128", "-k", K16, "--iv", "00" * 12, "-i", plain, "-o", enc)
    data = bytearray(enc.read_bytes())
    data[-1] ^= 1
    enc.write_bytes(bytes(data))
    out = tmp_private / "out"
    code, _, stderr = _run(
        "decrypt", "-a", "aes-gcm-128", "-k", K16, "--iv", "00" * 12, "-i", enc, "-o", out
    )
    assert code == 1
    assert "tag does not verify" in stderr
    assert sorted(p.name for p in tmp_private.iterdir()) == ["p", "p.enc"]


def test_rejects_renamed_teaclave_file(vectors: Path, tmp_private: Path) -> None:
    renamed = tmp_private / "other.enc"
    shutil.copy(vectors / "teaclave" / "functions" / PFS_FIXTURES[0].enc, renamed)
    code, _, stderr = _run(
        "decrypt", "-a", "teaclave-file-128", "-k", K16, "-i", renamed, "-o", tmp_private / "o"
    )
    assert code == 1 and "embedded file name" in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-a", "foo", "-k", K16], "Invalid crypto schema: foo"),
        (
            ["-a", "aes-gcm-128", "-k", "00" * 15, "--iv", "00" * 12],
            "Invalid key length for AesGcm128: 15",
        ),
        (["-a", "aes-gcm-128", "-k", K16], "Invalid iv length for AesGcm128: 0"),
        (["-a", "teaclave-file-128", "-k", K16, "--iv", "00" * 12], "IV is not empty"),
    ],
)
def test_reports_invalid_crypto_info(tmp_private: Path, args: list[str], message: str) -> None:
    plain = tmp_private / "p"
    plain.write_bytes(b"x")
    code, _, stderr = _run("encrypt", *args, "-i", plain, "-o", tmp_private / "o")
    assert code == 1
    assert message in stderr
    assert not (tmp_private / "o").exists()


def test_rejects_non_hex_key(tmp_private: Path) -> None:
    plain = tmp_private / "p"
    plain.write_bytes(b"x")
    code, _, stderr = _run("encrypt", "-k", "zz", "-i", plain, "-o", tmp_private / "o")
    assert code == 1 and "--key is not valid hex" in stderr  # 1: usage (docs/cli.md)
    assert "Traceback" not in stderr


def test_key_on_the_command_line_is_warned_about_and_a_key_file_is_not(tmp_private: Path) -> None:
    plain, key = tmp_private / "p", tmp_private / "k"
    plain.write_bytes(b"secret")
    key.write_text(K32 + "\n")
    code, _, stderr = _run("encrypt", "-k", K32, "-i", plain, "-o", tmp_private / "o1")
    assert code == 0 and "visible in" in stderr
    code, _, stderr = _run("encrypt", "--key-file", key, "-i", plain, "-o", tmp_private / "o2")
    assert code == 0 and "visible in" not in stderr, stderr
    # The same key, the same cmac: confide-stream-256 salts each file, so compare by decrypting.
    code, _, _ = _run("decrypt", "--key-file", key, "-i", tmp_private / "o1", "-o",
                      tmp_private / "d")
    assert code == 0 and (tmp_private / "d").read_bytes() == b"secret"


def test_a_bad_key_file_is_a_usage_error_not_a_traceback(tmp_private: Path) -> None:
    plain = tmp_private / "p"
    plain.write_bytes(b"x")
    code, _, stderr = _run("encrypt", "--key-file", tmp_private / "missing", "-i", plain,
                           "-o", tmp_private / "o")
    assert code == 1 and "missing" in stderr and "Traceback" not in stderr


def test_missing_input_is_an_error_not_a_crash(tmp_private: Path) -> None:
    code, _, stderr = _run(
        "encrypt", "-k", K32, "-i", tmp_private / "nope", "-o", tmp_private / "o"
    )
    assert code == 1 and "error" in stderr


def test_progress_bar_on_large_files(tmp_private: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    advanced: list[float] = []

    class RecordingProgress(Progress):
        def advance(self, task_id: TaskID, advance: float = 1) -> None:
            advanced.append(advance)
            super().advance(task_id, advance)

    monkeypatch.setattr(_crypto, "Progress", RecordingProgress)
    monkeypatch.setattr(_crypto, "PROGRESS_THRESHOLD_BYTES", 1000)
    plain = tmp_private / "p"
    plain.write_bytes(os.urandom(3 << 20))
    enc, back = tmp_private / "p.enc", tmp_private / "back"
    assert _run_in_process("encrypt", "-k", K32, "-i", plain, "-o", enc) == 0
    assert sum(advanced) == 3 << 20
    advanced.clear()
    assert _run_in_process("decrypt", "-k", K32, "-i", enc, "-o", back) == 0
    assert sum(advanced) == enc.stat().st_size
    assert back.read_bytes() == plain.read_bytes()


def test_no_progress_bar_on_small_files(tmp_private: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("no progress bar expected")

    monkeypatch.setattr(_crypto, "Progress", fail)
    plain = tmp_private / "p"
    plain.write_bytes(b"small")
    assert _run_in_process("encrypt", "-k", K32, "-i", plain, "-o", tmp_private / "e") == 0
