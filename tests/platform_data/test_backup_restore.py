"""``confide backup`` of a running server and ``confide restore`` into a fresh
data directory (issue 13 item 7): a server started on the restored directory
serves the task's results, its owner decrypts the output, and the audit chain
verifies; a wrong passphrase, a tampered and a truncated archive are each
refused with a clear message and restore nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from confide.client import TaskStatus
from tests.platform._server import ADMIN_PASSWORD, Server

from ._helpers import PY_COPY, party, register_function, run_task

PASSPHRASE = "a long backup passphrase\n"


def _confide(*args: str, stdin: str = PASSPHRASE) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "confide", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A server ran a task (blob store input and output), was backed up while running."""
    root = tmp_path_factory.mktemp("backup")
    s = Server(root / "data").start()
    try:
        with s.admin() as admin:
            fid = register_function(admin, "copy", executor_type="python", inputs=["in"],
                                    outputs=["out"], payload=PY_COPY.encode())
        alice = party(s)
        plain = os.urandom(3000) + b"end"
        upload = alice.client.upload_encrypted(plain, file_name="in.bin")
        out = alice.client.new_output(file_name="out.bin")
        task = run_task(alice, fid, {}, executor="mesapy",
                        inputs={"in": ([alice], alice.client.register_upload(upload))},
                        outputs={"out": ([alice], out.data_id)})
        assert (task.status, task.ok) == (TaskStatus.FINISHED, True)
        backup = _confide("backup", "--data-dir", str(s.data_dir), "--output",
                          str(root / "confide.bak"), "--passphrase-stdin")  # server running
        assert backup.returncode == 0, backup.stdout + backup.stderr
        assert "backed up" in backup.stdout
    finally:
        s.stop()
    return {"root": root, "ports": s.ports, "uid": alice.uid, "task": task.task_id,
            "out": out, "tag": task.tags_map["out"], "plain": plain}


def test_a_restored_data_dir_serves_the_results_and_the_audit_chain_verifies(
        backed_up: dict[str, object]) -> None:
    root = backed_up["root"]
    assert isinstance(root, Path)
    restored = root / "restored"
    result = _confide("restore", "--input", str(root / "confide.bak"), "--data-dir",
                      str(restored), "--passphrase-stdin")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (restored / "sim-sealing.key").is_file() and (restored / "blobs").is_dir()
    ports = backed_up["ports"]
    assert isinstance(ports, dict)
    s = Server(restored, ports=dict(ports)).start()  # same ports: the stored URLs name them
    try:
        uid = str(backed_up["uid"])
        with s.client(uid, "pw-" + uid) as alice:
            task = alice.get_task(str(backed_up["task"]))
            assert (task.status, task.tags_map["out"]) == (TaskStatus.FINISHED, backed_up["tag"])
            assert alice.download_decrypted(backed_up["out"],  # type: ignore[arg-type]
                                            task.tags_map["out"]) == backed_up["plain"]
        with s.client("admin", ADMIN_PASSWORD) as admin:
            assert admin.query_audit_logs("create_task", 100)
    finally:
        s.stop()
    verify = _confide("audit", "verify", "--data-dir", str(restored), stdin="")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "audit log verifies" in verify.stdout


@pytest.mark.parametrize("damage", ["wrong passphrase", "tampered", "truncated"])
def test_a_bad_archive_or_passphrase_is_refused_and_restores_nothing(
        backed_up: dict[str, object], damage: str) -> None:
    root = backed_up["root"]
    assert isinstance(root, Path)
    data = bytearray((root / "confide.bak").read_bytes())
    passphrase = PASSPHRASE
    if damage == "wrong passphrase":
        passphrase = "not the backup passphrase\n"
    elif damage == "tampered":
        data[len(data) // 2] ^= 0x01
    else:
        del data[len(data) // 3:]
    archive = root / f"{damage.replace(' ', '-')}.bak"
    archive.write_bytes(bytes(data))
    target = root / f"restored-{damage.replace(' ', '-')}"
    result = _confide("restore", "--input", str(archive), "--data-dir", str(target),
                      "--passphrase-stdin", stdin=passphrase)
    expected = {"wrong passphrase": "wrong passphrase", "tampered": "tampered with",
                "truncated": "truncated"}[damage]
    message = " ".join(result.stderr.split())  # the console wraps long lines
    assert result.returncode == 3, result.stdout + result.stderr
    assert expected in message and "nothing was restored" in message
    assert "Traceback" not in message
    assert not target.exists()


def test_restore_refuses_a_data_dir_in_use(backed_up: dict[str, object]) -> None:
    root = backed_up["root"]
    assert isinstance(root, Path)
    result = _confide("restore", "--input", str(root / "confide.bak"), "--data-dir",
                      str(root / "data"), "--passphrase-stdin")
    assert result.returncode == 1 and "not empty" in result.stderr
