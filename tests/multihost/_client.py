"""The client host's side of the multi-host tests: run in the client's namespace.

``python _client.py three-party HOST CERT`` runs a three-party task (a function
owner's private ``builtin-password-check``; one data owner holds the password,
another the exposed list) and prints a JSON summary. ``python _client.py audit
HOST CERT QUERY`` prints the matching audit entries as JSON.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from confide.client import Client

PORTS = {"authentication_port": 7776, "frontend_port": 7777}


def _data_url(plaintext: bytes) -> dict[str, object]:
    """An input file as a ``data:`` URL: Teaclave's AES-GCM-128 file (ciphertext ‖ tag,
    8 zero bytes of associated data) under a key only its owner has."""
    key, iv = os.urandom(16), os.urandom(12)
    sealed = AESGCM(key).encrypt(iv, plaintext, bytes(8))
    url = "data:text/plain;base64," + base64.b64encode(sealed).decode()
    return {"url": url, "schema": "aes-gcm-128", "key": key, "iv": iv, "cmac": sealed[-16:]}


def _client(host: str, cert: Path, user: str | None = None, pw: str = "") -> Client:
    c = Client.connect(host, server_cert=cert, **PORTS)
    if user is not None:
        c.login(user, pw)
    return c


def three_party(host: str, cert: Path) -> dict[str, object]:
    admin = _client(host, cert, "admin", "teaclave")
    tag = uuid.uuid4().hex[:6]
    users = {}
    for name, role, attr in (("owner", "FunctionOwner", ""), ("alice", "DataOwner", "orgA"),
                             ("bob", "DataOwner", "orgB")):
        uid = f"{name}-{tag}"
        admin.register_user(uid, "pw-" + uid, role, attr)
        users[name] = (uid, _client(host, cert, uid, "pw-" + uid))
    (owner_id, owner), (alice_id, alice), (bob_id, bob) = (
        users["owner"], users["alice"], users["bob"])
    from confide.client import FunctionFile

    fid = owner.register_function(
        "builtin-password-check", executor_type="builtin", public=False,
        user_allowlist=["orgA", "orgB"],
        inputs=[FunctionFile("password"), FunctionFile("exposed_passwords")], outputs=[])
    password = b"correct horse battery staple"
    alice_file = _data_url(password + b"\n")
    bob_file = _data_url(b"123456\n" + password + b"\nqwerty\n")
    tid = alice.create_task(fid, {}, executor="builtin", inputs_ownership={
        "password": [alice_id], "exposed_passwords": [bob_id]})
    alice.assign_data(tid, inputs={"password": alice.register_input_file(**alice_file)})
    bob.assign_data(tid, inputs={"exposed_passwords": bob.register_input_file(**bob_file)})
    for client in (alice, bob, owner):
        client.approve_task(tid)
    alice.invoke_task(tid)
    task = alice.wait(tid, 45)
    return {"task_id": tid, "status": int(task.status), "ok": task.ok,
            "return_value": (task.return_value or b"").decode(),
            "participants": sorted(task.participants),
            "expected_participants": sorted([owner_id, alice_id, bob_id]),
            "reason": task.reason}


def audit(host: str, cert: Path, query: str) -> list[dict[str, object]]:
    admin = _client(host, cert, "admin", "teaclave")
    return [{"user": e.user, "message": e.message, "ok": e.result}
            for e in admin.query_audit_logs(query, 100)]


def main() -> None:
    mode, host, cert = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    out: object = three_party(host, cert) if mode == "three-party" else audit(
        host, cert, sys.argv[4])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
