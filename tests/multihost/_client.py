"""The client host's side of the multi-host tests: run in the client's namespace.

``python _client.py three-party HOST CERT`` runs a three-party task (a function
owner's private ``builtin-password-check``; one data owner holds the password,
another the exposed list) and prints a JSON summary. ``python _client.py audit
HOST CERT QUERY`` prints the matching audit entries as JSON. ``python
_client.py load HOST CERT N SLEEPERS SLEEP_S`` is load for the fault scenarios:
SLEEPERS Python tasks that sleep SLEEP_S, then the rest of N echo tasks; it
prints one JSON line when all are invoked, one when every sleeper is Running
(the moment to inject a fault), and one with every task's final state and when
it was first seen final (epoch seconds; hosts share the clock).
``python _client.py sessions HOSTS TRUST_DIR STOP_FILE N`` runs N sessions that
attest every endpoint of HOSTS and create, invoke and wait for tasks until
STOP_FILE exists, printing ``done`` per task, then a JSON summary.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
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


PY_SLEEP = """
import time

def entrypoint(argv):
    time.sleep(float(argv[1]))
    return 'slept'
"""


def _say(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, "at": time.time(), **fields}), flush=True)


def load(host: str, cert: Path, n: int, sleepers: int, sleep_s: float,
         deadline_s: float = 150.0) -> None:
    from confide.client import FunctionArgument, TaskStatus

    admin = _client(host, cert, "admin", "teaclave")
    sleep = admin.register_function("sleep", executor_type="python", payload=PY_SLEEP.encode(),
                                    arguments=[FunctionArgument("sleep")])
    echo = admin.register_function("builtin-echo", executor_type="builtin",
                                   arguments=[FunctionArgument("message")])
    kinds: dict[str, str] = {}
    for i in range(n):
        if i < sleepers:
            tid = admin.create_task(sleep, {"sleep": str(sleep_s)}, executor="mesapy")
        else:
            tid = admin.create_task(echo, {"message": f"m{i}"}, executor="builtin")
        admin.invoke_task(tid)
        kinds[tid] = "sleep" if i < sleepers else "echo"
    _say("invoked", tasks=kinds)
    final: dict[str, dict[str, object]] = {}
    running_said = False
    end = time.monotonic() + deadline_s
    while len(final) < n and time.monotonic() < end:
        statuses = {}
        for tid in kinds:
            if tid in final:
                continue
            task = admin.get_task(tid)
            statuses[tid] = task.status
            if task.final:
                final[tid] = {"kind": kinds[tid], "status": int(task.status),
                              "reason": task.reason, "ok": task.ok, "final_at": time.time(),
                              "return_value": (task.return_value or b"").decode()}
        # Every sleeper Running at once: each worker host holds one per slot (a sleeper
        # that already ended would mean one host ran them all and the fault hits nothing).
        if not running_said and all(
                kinds[t] != "sleep" or statuses.get(t) == TaskStatus.RUNNING for t in kinds):
            running_said = True
            _say("running")
        time.sleep(0.1)
    stuck = {tid: int(admin.get_task(tid).status) for tid in kinds if tid not in final}
    _say("done", tasks=final, stuck=stuck)


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


def sessions(hosts: list[str], trust: Path, stop: Path, clients: int) -> dict[str, object]:
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
    if mode == "load":
        load(host, cert, int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]))
        return
    if mode == "sessions":  # sessions HOSTS TRUST_DIR STOP_FILE CLIENTS
        print(json.dumps(sessions(host.split(","), cert, Path(sys.argv[4]), int(sys.argv[5]))))
        return
    out: object = three_party(host, cert) if mode == "three-party" else audit(
        host, cert, sys.argv[4])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
