"""``confide demo``: a complete multi-party scenario against a fresh all-in-one server."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from rich.console import Console

from ..server import Platform, ServerConfig
from ._errors import ClientError
from ._sdk import Client, FunctionArgument

__all__ = ["run_demo"]


def run_demo(console: Console, data_dir: Path | None = None) -> int:
    logging.getLogger("confide").setLevel(logging.ERROR)
    tmp = None
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="confide-demo-")
        data_dir = Path(tmp.name)
    console.rule("[bold]confide demo[/bold]")
    console.print("[yellow]sim TEE: no protection against the operator (development only)[/]")
    platform = Platform(ServerConfig(data_dir=data_dir, authentication_port=0, frontend_port=0,
                                     scheduler_port=0, key_service_port=0, blob_port=0,
                                     workers=2))
    platform.start()
    ports = platform.ports
    console.print(f"1. started an all-in-one server in {data_dir} "
                  f"(authentication :{ports['authentication']}, frontend :{ports['frontend']}, "
                  f"2 workers)")
    with Client.connect_data_dir(data_dir, "127.0.0.1",
                                 authentication_port=ports["authentication"],
                                 frontend_port=ports["frontend"]) as probe:
        peer = probe.attested[1].peer
    console.print(f"   attested it before sending anything: MRENCLAVE "
                  f"{peer.mr_enclave.hex()[:16]}…, quote status {peer.status}, "
                  f"enclave_info signed by the (sim) auditor")

    def connect(user: str, password: str) -> Client:
        # Attested: auditor-signed enclave_info, report chain, measurements, RA-TLS quote.
        c = Client.connect_data_dir(data_dir, "127.0.0.1",
                                    authentication_port=ports["authentication"],
                                    frontend_port=ports["frontend"])
        c.login(user, password)
        return c

    try:
        admin = connect("admin", "teaclave")
        admin.register_user("acme", "acme-pw", "FunctionOwner")
        admin.register_user("alice", "alice-pw", "DataOwner", "bank-a")
        admin.register_user("bob", "bob-pw", "DataOwner", "bank-b")
        console.print("2. the administrator registered [cyan]acme[/] (function owner), "
                      "[cyan]alice[/] (data owner, bank-a) and [cyan]bob[/] (data owner, bank-b)")
        acme, alice, bob = connect("acme", "acme-pw"), connect("alice", "alice-pw"), \
            connect("bob", "bob-pw")
        fid = acme.register_function(
            "builtin-echo", executor_type="builtin", public=False, user_allowlist=["bank-a"],
            description="echoes its message", arguments=[FunctionArgument("message")])
        console.print(f"3. acme registered a [bold]private[/] function {fid}, usable by bank-a")
        try:
            bob.create_task(fid, {"message": "hi"}, executor="builtin")
        except ClientError as e:
            console.print(f"4. bob (bank-b) may not use it: [red]{e.code}[/] {e.message}")
        tid = alice.create_task(fid, {"message": "Hello from bank-a!"}, executor="builtin")
        task = alice.get_task(tid)
        console.print(f"5. alice created task {tid}; participants: {', '.join(task.participants)}")
        alice.assign_data(tid)
        alice.approve_task(tid)
        console.print("6. alice approved; the task waits for the function owner's approval: "
                      f"status {alice.get_task(tid).status_name}")
        try:
            alice.invoke_task(tid)
        except ClientError as e:
            console.print(f"   invoking before everyone approved fails: [red]{e.code}[/] {e.message}")
        acme.approve_task(tid)
        console.print(f"7. acme approved: status {alice.get_task(tid).status_name}")
        alice.invoke_task(tid)
        result = alice.wait(tid, timeout=30)
        console.print(f"8. alice invoked it; it ran in a worker: status [green]{result.status_name}"
                      f"[/], result {result.return_value.decode()!r}")
        try:
            bob.get_task(tid)
        except ClientError as e:
            console.print(f"9. bob cannot see the task: [red]{e.code}[/] {e.message}")
        entries = admin.query_audit_logs("task", 5)
        console.print("10. the audit log (newest first):")
        for e in entries:
            console.print(f"    {e.user or '-'} {e.message} {'ok' if e.result else 'denied'}")
        console.print(f"11. audit chain verified: {platform.audit.verify_chain()} entries")
        ok = result.ok is True and result.return_value == b"Hello from bank-a!"
    finally:
        platform.stop()
        if tmp is not None:
            tmp.cleanup()
    console.rule("[green]demo finished[/]" if ok else "[red]demo failed[/]")
    return 0 if ok else 1
