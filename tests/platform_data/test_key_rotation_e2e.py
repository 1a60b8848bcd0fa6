"""Key rotation on a running server (issue 13 item 8), through the SDK and the
installed command: ``confide keys rotate`` and ``confide keys reseal`` run beside
``confide serve``, which keeps serving logins and tasks throughout; tokens,
presigned URLs, rows and audit entries made before stay valid; new ones name
the new key; a forged kid is refused; a restart and a backup keep the ring."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import jwt
import pytest

from confide.client import ClientError, TaskStatus
from confide.client._sdk import OutputLocation
from tests.platform._server import ADMIN_PASSWORD, Server

from ._helpers import PY_COPY, Party, blob_status, party, register_function, run_task


def _confide(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "confide", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def _show(data_dir: Path) -> dict[str, list[dict[str, object]]]:
    result = _confide("keys", "show", "--data-dir", str(data_dir), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    kinds: dict[str, list[dict[str, object]]] = json.loads(result.stdout)["kinds"]
    return kinds


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def _login_kid(s: Server) -> str:
    with s.client("admin", ADMIN_PASSWORD) as admin:
        return _kid(admin._token or "")


class _Logins(threading.Thread):
    """Logs in and reads a task in a loop until stopped; counts failures."""

    def __init__(self, s: Server, p: Party, task_id: str) -> None:
        super().__init__(daemon=True)
        self.s, self.p, self.task_id = s, p, task_id
        self.stop = threading.Event()
        self.done = 0
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with self.s.client(self.p.uid, "pw-" + self.p.uid) as c:
                    assert c.get_task(self.task_id).status == TaskStatus.FINISHED
                self.done += 1
            except Exception as e:  # every failure is reported by the test
                self.errors.append(repr(e))


def _copy_task(alice: Party, plain: bytes) -> tuple[str, OutputLocation, bytes]:
    upload = alice.client.upload_encrypted(plain, file_name="in.bin")
    out = alice.client.new_output(file_name="out.bin")
    return alice.client.register_upload(upload), out, upload.url.encode()


def test_rotation_while_serving(tmp_path: Path) -> None:
    s = Server(tmp_path / "data", extra_env={"CONFIDE_KEYS__CHECK_INTERVAL_S": "0.5"}).start()
    try:
        _run(s, tmp_path)
    finally:
        s.stop()


def _run(s: Server, tmp_path: Path) -> None:
    with s.admin() as admin:
        fid = register_function(admin, "copy", executor_type="python", inputs=["in"],
                                outputs=["out"], payload=PY_COPY.encode())
    alice = party(s)
    old_token = alice.client._token or ""
    assert _kid(old_token) == "token-1"
    # Before: a task done, and an input and output registered with presign-1 URLs.
    done_in, done_out, _ = _copy_task(alice, b"first")
    first = run_task(alice, fid, {}, executor="mesapy",
                     inputs={"in": ([alice], done_in)},
                     outputs={"out": ([alice], done_out.data_id)})
    assert first.status == TaskStatus.FINISHED
    later_in, later_out, later_url = _copy_task(alice, b"second")
    assert b"kid=1" in later_url
    assert blob_status(later_url.decode()) == 200

    logins = _Logins(s, alice, first.task_id)
    logins.start()
    try:
        rotate = _confide("keys", "rotate", "--data-dir", str(s.data_dir))
        assert rotate.returncode == 0, rotate.stdout + rotate.stderr
        assert "token-2 is now the active token key" in rotate.stdout
        deadline = time.monotonic() + 20  # the server picks the ring up on its next check
        while _login_kid(s) != "token-2":
            assert time.monotonic() < deadline, "the server never picked up the rotation"
            time.sleep(0.2)
        reseal = _confide("keys", "reseal", "--data-dir", str(s.data_dir), "--batch", "7")
        assert reseal.returncode == 0, reseal.stdout + reseal.stderr
        assert "every row is under record-2" in reseal.stdout
        time.sleep(1.0)
    finally:
        logins.stop.set()
        logins.join(30)
    assert logins.errors == [] and logins.done > 0

    # Old token, old presigned URLs (read by the worker), old rows: all still good.
    alice.client.use_token(alice.uid, old_token)
    assert alice.client.get_task(first.task_id).status == TaskStatus.FINISHED
    assert blob_status(later_url.decode()) == 200
    second = run_task(alice, fid, {}, executor="mesapy",
                      inputs={"in": ([alice], later_in)},
                      outputs={"out": ([alice], later_out.data_id)})
    assert second.status == TaskStatus.FINISHED
    assert alice.client.download_decrypted(later_out, second.tags_map["out"]) == b"second"
    # New ones name the new keys.
    with s.client(alice.uid, "pw-" + alice.uid) as fresh:
        assert _kid(fresh._token or "") == "token-2"
        assert "kid=2" in fresh.blob_urls("x.bin").put_url
    kinds = _show(s.data_dir)
    assert [(v["kid"], v["active"]) for v in kinds["record"]] == [
        ("record-1", False), ("record-2", True)]
    assert kinds["record"][0]["rows"] == 0  # resealed, and the server writes under record-2

    _forged_kids_are_refused(s, alice, later_url.decode())
    with s.admin() as admin:
        rotations = admin.query_audit_logs("key_rotate", 100)
        assert sorted(e.message for e in rotations) == [
            "key_rotate: audit-2", "key_rotate: presign-2", "key_rotate: record-2",
            "key_rotate: token-2"]
        assert all(e.user == "operator (confide keys)" for e in rotations)
        assert len(admin.query_audit_logs("key_reseal", 100)) == 1

    # A restart keeps the ring; a backup carries it.
    s.stop()
    s.start()
    alice.client.close()
    with s.client(alice.uid, "pw-" + alice.uid) as again:
        assert _kid(again._token or "") == "token-2"
        assert again.get_task(second.task_id).tags_map["out"] == second.tags_map["out"]
    verify = _confide("audit", "verify", "--data-dir", str(s.data_dir))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    passphrase = "a long backup passphrase\n"
    backup = _confide("backup", "--data-dir", str(s.data_dir), "--output",
                      str(tmp_path / "k.bak"), "--passphrase-stdin", stdin=passphrase)
    assert backup.returncode == 0, backup.stdout + backup.stderr
    restored = tmp_path / "restored"
    restore = _confide("restore", "--input", str(tmp_path / "k.bak"), "--data-dir",
                       str(restored), "--passphrase-stdin", stdin=passphrase)
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert [v["kid"] for v in _show(restored)["token"]] == ["token-1", "token-2"]
    verify = _confide("audit", "verify", "--data-dir", str(restored))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged_kids_are_refused(s: Server, alice: Party, url: str) -> None:
    with s.client(alice.uid, "pw-" + alice.uid) as c:
        token = c._token or ""
    _header, payload, sig = token.split(".")
    for kid in ("token-1", "token-3", "record-2"):
        forged = f"{_b64(json.dumps({'alg': 'HS512', 'kid': kid, 'typ': 'JWT'}).encode())}" \
                 f".{payload}.{sig}"
        with s.client() as c:
            c.use_token(alice.uid, forged)
            with pytest.raises(ClientError) as info:
                c.get_task("task-" + "0" * 32)
            assert info.value.code in ("UNAUTHENTICATED", "PERMISSION_DENIED")
    # The URL signed by presign-1, claimed to be under presign-2: refused.
    assert "kid=1&" in url
    assert blob_status(url.replace("kid=1&", "kid=2&")) == 403
    assert blob_status(url.replace("kid=1&", "kid=9&")) == 403
    assert blob_status(url.replace("kid=1&", "")) == 403
    assert os.path.isdir(s.data_dir)


def test_scheduled_rotation_by_the_running_server(tmp_path: Path) -> None:
    from confide.node import open_platform_keys, open_root_secret

    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    secret = open_root_secret(data, create=True)
    # A platform whose keys were first recorded two minutes ago.
    open_platform_keys(secret, f"sqlite:///{data / 'confide.db'}",
                       clock=lambda: time.time() - 120).close()
    s = Server(data, workers=0, extra_env={"CONFIDE_KEYS__ROTATE_AFTER": "1m",
                                           "CONFIDE_KEYS__CHECK_INTERVAL_S": "0.5"}).start()
    try:
        deadline = time.monotonic() + 20
        while _login_kid(s) != "token-2":
            assert time.monotonic() < deadline, "the server never rotated on schedule"
            time.sleep(0.2)
        time.sleep(1.5)  # several more checks: nothing else is due for a minute
        assert _login_kid(s) == "token-2"
        with s.admin() as admin:
            rotations = admin.query_audit_logs("key_rotate", 100)
        assert sorted(e.message for e in rotations) == [
            "key_rotate: audit-2", "key_rotate: presign-2", "key_rotate: record-2",
            "key_rotate: token-2"]
        assert {e.user for e in rotations} == {"scheduled rotation"}
    finally:
        s.stop()
    verify = _confide("audit", "verify", "--data-dir", str(data))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_bad_rotation_period_stops_the_server_naming_the_key(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "confide", "serve", "--data-dir", str(tmp_path / "d"),
         "--workers", "0"], capture_output=True, text=True, timeout=60,
        env={**os.environ, "CONFIDE_KEYS__ROTATE_AFTER": "soon"})
    assert result.returncode != 0
    assert "keys.rotate_after" in result.stderr and "Traceback" not in result.stderr
