"""The scenario ``confide demo`` walks through, against a fresh all-in-one server."""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from ..client import Client, ClientError, FunctionArgument, FunctionFile
from ..keys import UnsafeSimSealerWarning
from ..node import Platform, ServerConfig

__all__ = ["DemoServer", "demo_server", "run_demo"]

#: Each bank's customers and amounts (``id : amount``), as in Teaclave's example data.
BANK_A = b"a : 100\nb : 200\nc : 300000\ne : 33000\n"
BANK_B = b"c : 170000\nd : 50\ne : 5000000\nf : 7\n"
#: What private-join-and-compute gives each bank: identities in both, amounts summed.
JOINED = {"c, 470000", "e, 5033000"}


@dataclass(frozen=True)
class DemoServer:
    """A throw-away all-in-one server: the platform and a way to log in to it."""

    platform: Platform
    data_dir: Path

    def connect(self, user: str, password: str) -> Client:
        """A new session, attested (auditor-signed enclave_info, report chain,
        measurements, RA-TLS quote) before anything is sent, then logged in."""
        ports = self.platform.ports
        c = Client.connect_data_dir(self.data_dir, "127.0.0.1",
                                    authentication_port=ports["authentication"],
                                    frontend_port=ports["frontend"])
        c.login(user, password)
        return c


@contextmanager
def demo_server(console: Console, data_dir: Path | None, title: str) -> Iterator[DemoServer]:
    """Start a server in ``data_dir`` (default: a temporary one), attest it, stop it after."""
    logging.getLogger("confide").setLevel(logging.ERROR)
    # The banner below says it once; the sealer's per-use warning would repeat it.
    warnings.filterwarnings("ignore", category=UnsafeSimSealerWarning)
    tmp = None
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="confide-demo-")
        data_dir = Path(tmp.name)
    console.rule(f"[bold]{title}[/bold]")
    console.print("[yellow]sim TEE: no protection against the operator (development only)[/]")
    platform = Platform(ServerConfig(data_dir=data_dir, authentication_port=0, frontend_port=0,
                                     scheduler_port=0, key_service_port=0, blob_port=0,
                                     workers=2, worker_log_level="ERROR"))
    platform.start()
    try:
        ports = platform.ports
        console.print(f"1. started an all-in-one server in {data_dir} "
                      f"(authentication :{ports['authentication']}, "
                      f"frontend :{ports['frontend']}, 2 workers)")
        with Client.connect_data_dir(data_dir, "127.0.0.1",
                                     authentication_port=ports["authentication"],
                                     frontend_port=ports["frontend"]) as probe:
            peer = probe.attested[1].peer
        console.print(f"   attested it before sending anything: MRENCLAVE "
                      f"{peer.mr_enclave.hex()[:16]}…, quote status {peer.status}, "
                      f"enclave_info signed by the (sim) auditor")
        yield DemoServer(platform, data_dir)
    finally:
        platform.stop()
        if tmp is not None:
            tmp.cleanup()


def run_demo(console: Console, data_dir: Path | None = None) -> int:
    """Run the scenario against a new server in ``data_dir`` (default: a temporary one).

    Returns the exit status: 0 when every party got what it should, 1 otherwise.
    """
    with demo_server(console, data_dir, "confide demo") as server:
        platform, connect = server.platform, server.connect
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
            console.print("   invoking before everyone approved fails: "
                          f"[red]{e.code}[/] {e.message}")
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
        ok = result.ok is True and result.return_value == b"Hello from bank-a!"
        ok = _joint_computation(console, acme, alice, bob) and ok
        entries = admin.query_audit_logs("task", 5)
        console.print("15. the audit log (newest first):")
        for entry in entries:
            console.print(f"    {entry.user or '-'} {entry.message} "
                          f"{'ok' if entry.result else 'denied'}")
        console.print(f"16. audit chain verified: {platform.audit.verify_chain()} entries")
    console.rule("[green]demo finished[/]" if ok else "[red]demo failed[/]")
    return 0 if ok else 1


def _joint_computation(console: Console, acme: Client, alice: Client, bob: Client) -> bool:
    """Steps 10-14: bank-a and bank-b join their encrypted customer lists."""
    names = [f"input_data{i}" for i in range(2)], [f"output_data{i}" for i in range(2)]
    fid = acme.register_function(
        "builtin-private-join-and-compute", executor_type="builtin", public=False,
        user_allowlist=["bank-a", "bank-b"], description="sums amounts of shared customers",
        arguments=[FunctionArgument("num_user")], inputs=[FunctionFile(n) for n in names[0]],
        outputs=[FunctionFile(n) for n in names[1]])
    console.print(f"10. acme registered private-join-and-compute {fid} for bank-a and bank-b")
    banks = {"alice": (alice, BANK_A), "bob": (bob, BANK_B)}
    inputs, outputs = {}, {}
    for i, (uid, (client, rows)) in enumerate(banks.items()):
        upload = client.upload_encrypted(rows, file_name=f"customers-{uid}")
        inputs[uid] = client.register_upload(upload)
        outputs[uid] = client.new_output(file_name=f"joined-{uid}")
        console.print(f"11. {uid} encrypted {len(rows)} bytes of customer data on their own "
                      f"machine ({upload.schema}, key kept locally) and uploaded it; "
                      f"output {i} goes to a location only {uid} holds the key of")
    tid = alice.create_task(fid, {"num_user": 2}, executor="builtin",
                            inputs_ownership={"input_data0": ["alice"], "input_data1": ["bob"]},
                            outputs_ownership={"output_data0": ["alice"],
                                               "output_data1": ["bob"]})
    alice.assign_data(tid, inputs={"input_data0": inputs["alice"]},
                      outputs={"output_data0": outputs["alice"].data_id})
    bob.assign_data(tid, inputs={"input_data1": inputs["bob"]},
                    outputs={"output_data1": outputs["bob"].data_id})
    for client in (alice, bob, acme):
        client.approve_task(tid)
    console.print(f"12. task {tid}: each bank assigned its own file, alice, bob and acme "
                  f"approved: status {alice.get_task(tid).status_name}")
    alice.invoke_task(tid)
    task = alice.wait(tid, timeout=30)
    console.print(f"13. it ran in a worker: status [green]{task.status_name}[/], "
                  f"result {task.return_value.decode(errors='replace')!r}")
    ok = task.ok is True
    for i, (uid, (client, _rows)) in enumerate(banks.items()):
        if not ok:
            break
        plain = client.download_decrypted(outputs[uid], task.tags_map[f"output_data{i}"])
        lines = plain.decode().splitlines()
        console.print(f"14. {uid} downloaded and decrypted output {i}: "
                      f"[bold]{'; '.join(lines)}[/]")
        ok = ok and set(lines) == JOINED
    try:
        alice.get_output_file(outputs["bob"].data_id)
        ok = False
    except ClientError as e:
        console.print(f"    alice cannot even look at bob's output: [red]{e.code}[/] {e.message}")
    return ok
