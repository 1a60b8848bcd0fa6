"""``confide keys`` refusals: every failure is a message and an exit status, never a traceback,
and nothing shown is key material."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from confide.keys import KEY_KINDS
from confide.node import open_platform_keys, open_root_secret


def _confide(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "confide", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    secret = open_root_secret(data, create=True)
    open_platform_keys(secret, f"sqlite:///{data / 'confide.db'}").close()
    return data


def test_show_never_prints_key_bytes(data_dir: Path) -> None:
    assert _confide("keys", "rotate", "-d", str(data_dir)).returncode == 0
    secret = open_root_secret(data_dir, create=False)
    keys = open_platform_keys(secret, f"sqlite:///{data_dir / 'confide.db'}")
    try:
        material = [keys.live.ring.key(kind, v) for kind in KEY_KINDS for v in (1, 2)]
    finally:
        keys.close()
    for args in (("keys", "show", "-d", str(data_dir)),
                 ("keys", "show", "-d", str(data_dir), "--json")):
        out = _confide(*args)
        assert out.returncode == 0, out.stderr
        assert "token-2" in out.stdout
        for key in material:
            assert key is not None and key.hex() not in out.stdout + out.stderr


def test_refusals_are_messages_with_a_status(data_dir: Path, tmp_path: Path) -> None:
    bad_kind = _confide("keys", "rotate", "-d", str(data_dir), "--key", "platform-ca")
    assert bad_kind.returncode == 1 and "unknown key kind 'platform-ca'" in bad_kind.stderr
    bad_batch = _confide("keys", "reseal", "-d", str(data_dir), "--batch", "0")
    assert bad_batch.returncode == 1 and "batch must be 1..10000" in bad_batch.stderr
    missing = _confide("keys", "show", "-d", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no database" in missing.stderr
    with sqlite3.connect(data_dir / "confide.db") as c:  # the untrusted database edits the ring
        blob = bytearray(c.execute("select value from meta where key='keyring'").fetchone()[0])
        blob[-1] ^= 1
        c.execute("update meta set value = ? where key = 'keyring'", (bytes(blob),))
    for args in (("keys", "show"), ("keys", "rotate"), ("audit", "verify")):
        out = _confide(*args, "-d", str(data_dir))
        assert out.returncode == 3, out.stdout + out.stderr
        assert "keyring-invalid" in out.stderr and "Traceback" not in out.stderr
