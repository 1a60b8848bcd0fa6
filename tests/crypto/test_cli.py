"""The encrypt/decrypt CLI, driven through typer's CliRunner."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from rich.progress import Progress, TaskID
from typer.testing import CliRunner

from confide.client import cli_crypto
from confide.client.cli_crypto import app

from .conftest import PFS_FIXTURES

runner = CliRunner()
K16 = "00" * 16
K32 = "11" * 32


def _run(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


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
    assert code == 2 and "--key is not valid hex" in stderr


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

    monkeypatch.setattr(cli_crypto, "Progress", RecordingProgress)
    monkeypatch.setattr(cli_crypto, "PROGRESS_THRESHOLD_BYTES", 1000)
    plain = tmp_private / "p"
    plain.write_bytes(os.urandom(3 << 20))
    enc, back = tmp_private / "p.enc", tmp_private / "back"
    assert _run("encrypt", "-k", K32, "-i", plain, "-o", enc)[0] == 0
    assert sum(advanced) == 3 << 20
    advanced.clear()
    assert _run("decrypt", "-k", K32, "-i", enc, "-o", back)[0] == 0
    assert sum(advanced) == enc.stat().st_size
    assert back.read_bytes() == plain.read_bytes()


def test_no_progress_bar_on_small_files(tmp_private: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("no progress bar expected")

    monkeypatch.setattr(cli_crypto, "Progress", fail)
    plain = tmp_private / "p"
    plain.write_bytes(b"small")
    assert _run("encrypt", "-k", K32, "-i", plain, "-o", tmp_private / "e")[0] == 0
