"""The client host's side of the multi-host tests: run in the client's namespace.

``python _client.py load HOSTS TRUST_DIR STOP_FILE N`` runs N sessions that attest every
endpoint of HOSTS and create, invoke and wait for tasks until STOP_FILE exists, printing
``done`` per task, then a JSON summary. ``python _client.py three-party HOST CERT``
runs a three-party task (a function owner's private ``builtin-password-check``; one
data owner holds the password, another the exposed list) and prints a JSON summary.
``python _client.py audit HOST CERT QUERY`` prints the matching audit entries as JSON.
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


def _load_one(hosts: list[str], trust: Path, stop: Path, name: str,
              admin: Client) -> dict[str, object]:
    """One user's session: create, invoke and wait for echo tasks until ``stop`` exists."""
    from confide.client import ClientError, FunctionArgument

    uid = f"{name}-{uuid.uuid4().hex[:6]}"
    admin.register_user(uid, "pw-" + uid, "PlatformAdmin", "")
    c = Client.connect_data_dir(trust, hosts=hosts)
    c.login(uid, "pw-" + uid)
    fid = c.register_function("builtin-echo", executor_type="builtin",
                              arguments=[FunctionArgument("message")])
    made: list[str] = []
    results: dict[str, list[object]] = {}
    looked = 0  # invocations whose answer was lost: looked at the task before invoking again
    while not stop.exists() or not made:
        message = f"{name}-{len(made)}"
        tid = c.create_task(fid, {"message": message}, executor="builtin")
        made.append(tid)
        try:
            c.invoke_task(tid)
        except ClientError as e:
            if e.code != "UNAVAILABLE":
                raise
            looked += 1  # it may have been invoked: look before invoking again
            if c.get_task(tid).status_name in ("Created", "DataAssigned", "Approved"):
                c.invoke_task(tid)
        task = c.wait(tid, 60)
        results[tid] = [task.status_name, task.ok, task.return_value.decode(), message,
                        task.reason]
        print(f"done {name} {len(made)}", flush=True)
    listed = c.list_tasks(1000)
    return {"user": uid, "made": made, "results": results, "listed": sorted(listed),
            "looked": looked, "endpoints": [state for _, state in c.endpoints]}


def load(hosts: list[str], trust: Path, stop: Path, clients: int) -> dict[str, object]:
    """``clients`` sessions in parallel (each attests every endpoint, starts on the first)."""
    from concurrent.futures import ThreadPoolExecutor

    admin = Client.connect_data_dir(trust, hosts=hosts)
    admin.login("admin", "teaclave")
    with ThreadPoolExecutor(clients) as pool:
        jobs = [pool.submit(_load_one, hosts, trust, stop, f"c{i}", admin)
                for i in range(clients)]
        return {"sessions": [j.result() for j in jobs]}


def main() -> None:
    mode, host, cert = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    if mode == "load":  # load HOSTS TRUST_DIR STOP_FILE CLIENTS
        print(json.dumps(load(host.split(","), cert, Path(sys.argv[4]), int(sys.argv[5]))))
        return
    out: object = three_party(host, cert) if mode == "three-party" else audit(
        host, cert, sys.argv[4])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
