"""Several frontends of one deployment (issue 12 item 6), on one host.

Node ``a`` serves every role; node ``b`` serves only authentication and frontend and
joins through ``a``'s key service, sharing its database. Clients attest both, use one,
and carry on on the other when it dies: killed with SIGKILL, or cut in the middle of a
call (a proxy that resets its connections). The session token works on either: the
frontends keep no session state.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import confide
from confide.client import Client, ClientError, TaskStatus
from confide.client._endpoints import never_sent

from ._drain import PY_SLEEP
from ._helpers import echo_function
from ._proxy import Proxy
from ._server import ADMIN_PASSWORD, Server, _listening, free_port


def _env(**extra: str) -> dict[str, str]:
    src = str(Path(confide.__file__).resolve().parents[1])
    pythonpath = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": pythonpath, **extra}


@dataclass
class Pair:
    a: Server
    b: subprocess.Popen[bytes]
    b_ports: dict[str, int]
    b_log: Path

    def entry(self, which: str) -> str:
        ports = self.a.ports if which == "a" else self.b_ports
        return f"127.0.0.1:{ports['frontend']}:{ports['authentication']}"

    def kill_b(self) -> None:
        self.b.send_signal(signal.SIGKILL)
        self.b.wait(20)

    def client(self, *entries: str) -> Client:
        return Client.connect_data_dir(self.a.data_dir, hosts=list(entries))


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    reports = free_port()  # a's attestation report service endorses b's certificates too
    a = Server(tmp_path / "a", workers=1,
               extra_args=["--attestation-service-port", str(reports)]).start()
    b: subprocess.Popen[bytes] | None = None
    try:
        shutil.copytree(a.data_dir / "sim-attester", tmp_path / "sim")
        ports = {"authentication": free_port(), "frontend": free_port(), "blobs": free_port()}
        log = tmp_path / "b.log"
        with open(log, "ab") as out:
            b = subprocess.Popen(
                [sys.executable, "-m", "confide", "serve", "--data-dir", str(tmp_path / "b"),
                 "--services", "authentication,frontend",
                 "--keys", f"127.0.0.1:{a.ports['keys']}", "--sim-attester",
                 str(tmp_path / "sim"), "--database-url",
                 f"sqlite:///{a.data_dir / 'confide.db'}",
                 "--attestation-service", f"127.0.0.1:{reports}",
                 "--attestation-service-ca", str(a.data_dir / "as-root-ca.pem"),
                 "--authentication-port", str(ports["authentication"]),
                 "--frontend-port", str(ports["frontend"]), "--blob-port", str(ports["blobs"]),
                 "--scheduler-port", str(free_port()), "--key-service-port", str(free_port())],
                stdout=out, stderr=subprocess.STDOUT, env=_env(), cwd=tmp_path)
        deadline = time.monotonic() + 60
        while not (_listening(ports["frontend"]) and "confide is serving" in log.read_text()):
            assert b.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        yield Pair(a, b, ports, log)
    finally:
        if b is not None and b.poll() is None:
            b.kill()
            b.wait(20)
        a.stop()


def _states(client: Client) -> list[str]:
    return [state for _, state in client.endpoints]


def test_a_session_survives_the_death_of_its_frontend(pair: Pair) -> None:
    client = pair.client(pair.entry("b"), pair.entry("a"))
    assert _states(client) == ["in use", "ready"]  # both attested, b first
    assert client.attested[1].port == pair.b_ports["frontend"]
    client.login("admin", ADMIN_PASSWORD)  # on b
    fid = echo_function(client, public=True)
    before = client.create_task(fid, {"message": "before"}, executor="builtin")
    client.invoke_task(before)
    assert client.wait(before, 30).return_value == b"before"
    head = client.participant_audit(limit=5).tree_head  # signed by b's key
    assert head.certificate_der == client.frontend_certificate_der
    pair.kill_b()
    # The same session, token and all, carries on at a.
    after = client.create_task(fid, {"message": "after"}, executor="builtin")
    client.invoke_task(after)
    task = client.wait(after, 30)
    assert (task.status, task.return_value) == (TaskStatus.FINISHED, b"after")
    assert _states(client) == ["down", "in use"]
    view = client.participant_audit(task_id=after)  # signed by a's key, proven to extend b's
    assert view.tree_head.certificate_der != head.certificate_der
    assert view.tree_head.tree_size > head.tree_size
    assert sorted(client.list_tasks(10)) == sorted([before, after])  # nothing doubled
    client.close()


def test_a_wait_cut_mid_call_is_resent_to_the_other_frontend(pair: Pair) -> None:
    proxy = Proxy(pair.b_ports["frontend"])
    try:
        client = pair.client(f"127.0.0.1:{proxy.port}:{pair.b_ports['authentication']}",
                             pair.entry("a"))
        client.login("admin", ADMIN_PASSWORD)
        fid = client.register_function("sleep", executor_type="python",
                                       payload=PY_SLEEP.encode())
        tid = client.create_task(fid, {}, executor="mesapy")
        client.invoke_task(tid)
        threading_timer(1.0, proxy.drop)  # while WaitTask is held open by b
        started = time.monotonic()
        task = client.wait(tid, 30)
        assert (task.status, task.return_value) == (TaskStatus.FINISHED, b"slept"), task.reason
        assert time.monotonic() - started < 20
        assert _states(client) == ["down", "in use"]
    finally:
        proxy.drop()


def threading_timer(delay: float, fn: object) -> None:
    assert callable(fn)
    t = threading.Timer(delay, fn)
    t.daemon = True
    t.start()


#: More client bytes than HTTP/2 control frames in TLS records (a WINDOW_UPDATE or PING ack
#: left over from the previous call is 35-40 bytes), fewer than a request's headers.
_REQUEST_BYTES = 120


def _drop_once_sent(proxy: Proxy) -> None:
    """Drop ``proxy`` (in the background) 0.5 s after a client's next request passed it."""
    before = proxy.forwarded

    def drop() -> None:
        deadline = time.monotonic() + 30
        while proxy.forwarded < before + _REQUEST_BYTES and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)
        proxy.drop()

    threading.Thread(target=drop, name="drop-once-sent", daemon=True).start()


def test_an_invocation_cut_mid_call_is_not_sent_twice(pair: Pair) -> None:
    """The answer to InvokeTask is lost (b reset after the request went out): the SDK says
    UNAVAILABLE instead of invoking again elsewhere; a look at the task shows it ran once."""
    proxy = Proxy(pair.b_ports["frontend"])
    try:
        client = pair.client(f"127.0.0.1:{proxy.port}:{pair.b_ports['authentication']}",
                             pair.entry("a"))
        client.login("admin", ADMIN_PASSWORD)
        fid = echo_function(client, public=True)
        tid = client.create_task(fid, {"message": "once"}, executor="builtin")
        # Hold b's answer back: stop b (SIGSTOP) so the request is sent but never answered,
        # then cut the connection, once the request went out (a cut before it, on a slow
        # machine, is a connection that failed: the SDK rightly tries a then).
        pair.b.send_signal(signal.SIGSTOP)
        try:
            _drop_once_sent(proxy)
            with pytest.raises(ClientError) as e:
                client.invoke_task(tid)
            assert e.value.code == "UNAVAILABLE" and not never_sent(e.value)
        finally:
            pair.b.send_signal(signal.SIGCONT)
        assert _states(client) == ["down", "in use"]
        time.sleep(2)  # had b acted on it after all, its audit entry is written by now
        entries = client.participant_audit(task_id=tid).entries
        assert any("create" in e.message.lower() for e in entries), entries
        invocations = [e for e in entries if "invoke" in e.message.lower()]
        assert len(invocations) <= 1, invocations  # never invoked a second time at a
    finally:
        proxy.drop()


def _login_error(client: Client, user: str, password: str) -> str:
    try:
        client.login(user, password)
    except ClientError as e:
        assert e.code == "UNAUTHENTICATED", e
        return e.message
    return ""


def test_failed_logins_on_one_authentication_server_lock_the_user_on_the_other(
        pair: Pair) -> None:
    """Both nodes serve authentication on one database: a guesser spreading its
    guesses over them gets the budget of one (issue 12)."""
    with pair.client(pair.entry("a")) as admin:
        admin.login("admin", ADMIN_PASSWORD)
        admin.register_user("victim", "victim-pw", "DataOwner", "org")
    on_a, on_b = pair.client(pair.entry("a")), pair.client(pair.entry("b"))
    failed = "authentication failed"
    assert [_login_error(on_a, "victim", f"guess-{i}") for i in range(3)] == [failed] * 3
    assert [_login_error(on_b, "victim", f"guess-{i}") for i in range(2)] == [failed] * 2
    # The fifth failure, on b, locked victim on a as well: the right password waits.
    locked = f"{failed}: too many failed logins for this user id, retry after "
    assert _login_error(on_a, "victim", "victim-pw").startswith(locked)
    assert _login_error(on_b, "victim", "victim-pw").startswith(locked)
    time.sleep(1.1)  # the first lock lasts 1 s
    assert _login_error(on_a, "victim", "victim-pw") == ""


def test_an_unreachable_endpoint_does_not_stop_the_session(pair: Pair) -> None:
    nothing = free_port()
    client = pair.client(f"127.0.0.1:{nothing}:{nothing}", pair.entry("a"))
    assert _states(client) == ["down", "in use"]
    client.login("admin", ADMIN_PASSWORD)
    assert client.list_tasks(1) is not None
    with pytest.raises(ClientError) as e:  # and none reachable at all: UNAVAILABLE
        Client.connect_data_dir(pair.a.data_dir, hosts=[f"127.0.0.1:{nothing}:{nothing}"])
    assert e.value.code == "UNAVAILABLE"


def test_the_cli_keeps_every_endpoint_in_the_profile_and_fails_over(
        pair: Pair, tmp_path: Path) -> None:
    env = _env(CONFIDE_HOME=str(tmp_path / "home"))

    def confide_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "confide", *args], input=stdin,
                              capture_output=True, text=True, env=env, timeout=120)

    login = confide_cli("user", "login", "admin", "--password-stdin", "-d",
                        str(pair.a.data_dir), "--host", pair.entry("b"), "--host",
                        f"{pair.entry('a')}", stdin=ADMIN_PASSWORD + "\n")
    assert login.returncode == 0, login.stderr
    assert "2 endpoints" in login.stdout
    who = json.loads(confide_cli("user", "whoami", "--json").stdout)
    assert who["server"] == (f"127.0.0.1:{pair.b_ports['frontend']},"
                             f"127.0.0.1:{pair.a.ports['frontend']}")
    pair.kill_b()
    listed = confide_cli("task", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    # CONFIDE_HOST takes a comma list too; a malformed entry is a usage error
    bad = subprocess.run([sys.executable, "-m", "confide", "user", "login", "admin",
                          "--password-stdin", "-d", str(pair.a.data_dir)],
                         input="x\n", capture_output=True, text=True, timeout=60,
                         env={**env, "CONFIDE_HOST": f"{pair.entry('a')},fe:0"})
    assert bad.returncode == 1, bad.stderr
    assert "'0' is not a port" in bad.stderr


def test_a_session_survives_its_server_reattesting(tmp_path: Path) -> None:
    """The server re-attests (a new key and certificate); the session's connection breaks;
    the next call attests the server again instead of failing the old pin for good."""
    from confide.attestation import fetch_unverified_certificate
    from confide.node import Platform, ServerConfig

    platform = Platform(ServerConfig(data_dir=tmp_path / "data", authentication_port=0,
                                     frontend_port=0, scheduler_port=0, key_service_port=0,
                                     blob_port=None, workers=0,
                                     attestation_validity_s=1.0, renewal_check_s=0.2))
    platform.start()
    proxy = Proxy(platform.ports["frontend"])
    try:
        client = Client.connect_data_dir(
            tmp_path / "data", hosts=[f"127.0.0.1:{proxy.port}:{platform.ports['authentication']}"])
        client.login("admin", ADMIN_PASSWORD)
        client.list_tasks(1)
        first = client.frontend_certificate_der
        deadline = time.monotonic() + 15
        while fetch_unverified_certificate("127.0.0.1", platform.ports["frontend"]) == first:
            assert time.monotonic() < deadline, "the server did not re-attest"
            time.sleep(0.1)
        proxy.reset()  # the pinned connection is gone: the next one meets the new certificate
        assert client.list_tasks(1) is not None
        certificates = client._pool.frontend_certificates_der
        assert len(certificates) >= 2 and certificates[0] == first  # attested again
        client.close()
    finally:
        proxy.drop()
        platform.stop()
