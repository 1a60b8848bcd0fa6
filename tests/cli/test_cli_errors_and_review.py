"""The CLI through its installed entry point: errors name their cause (and exit with the
documented status), review before approval, rejection, profiles, --json, the data path."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests._entry_point import CONFIDE
from tests.platform._server import Server

from .test_readme_cli import cli_env


@dataclass
class Cli:
    server: Server
    home: Path
    cwd: Path

    def __call__(self, *args: str | Path, stdin: str | None = None,
                 profile: str | None = None) -> subprocess.CompletedProcess[str]:
        env = cli_env(self.server, self.home)
        if profile is not None:
            env["CONFIDE_PROFILE"] = profile
        proc = subprocess.run([str(CONFIDE), *(str(a) for a in args)], input=stdin, env=env,
                              cwd=self.cwd, capture_output=True, text=True, timeout=120,
                              check=False)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def ok(self, *args: str | Path, stdin: str | None = None, profile: str | None = None) -> str:
        proc = self(*args, stdin=stdin, profile=profile)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    def user(self, name: str, role: str, attribute: str = "") -> str:
        uid = f"{name}-{uuid.uuid4().hex[:6]}"
        extra = ["--attribute", attribute] if attribute else []
        self.ok("user", "register", uid, role, *extra, "--password-stdin", stdin="pw\n",
                profile="admin")
        self.ok("user", "login", uid, "-d", self.server.data_dir, "--password-stdin",
                stdin="pw\n", profile=uid)
        return uid


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    root = tmp_path_factory.mktemp("cli")
    server = Server(root / "confide-data").start()
    c = Cli(server, root / "home", root)
    c.ok("user", "login", "admin", "-d", server.data_dir, "--password-stdin",
         stdin="teaclave\n", profile="admin")
    yield c
    server.stop()


@pytest.fixture(scope="module")
def parties(cli: Cli) -> dict[str, str]:
    return {"acme": cli.user("acme", "FunctionOwner"),
            "alice": cli.user("alice", "DataOwner", "org-a"),
            "bob": cli.user("bob", "DataOwner", "org-b")}


def _echo(cli: Cli, owner: str, *extra: str) -> str:
    return cli.ok("function", "register", "builtin-echo", "--executor-type", "builtin",
                  "--private", "--allow", "org-a", "--allow", "org-b", "--argument", "message",
                  *extra, profile=owner)


# -- errors name their cause ----------------------------------------------------------
def test_unknown_and_missing_arguments_are_named(cli: Cli, parties: dict[str, str]) -> None:
    fid = _echo(cli, parties["acme"])
    r = cli("task", "create", fid, "--executor", "builtin", "--arguments",
            '{"message": "hi", "mesage": 1}', profile=parties["alice"])
    assert r.returncode == 1
    assert "INVALID_ARGUMENT: invalid task" in r.stderr
    assert "arguments.mesage: unknown" in r.stderr and "takes the arguments: message" in r.stderr
    r = cli("task", "create", fid, "--executor", "builtin", profile=parties["alice"])
    assert r.returncode == 1 and "arguments.message: missing" in r.stderr


def test_python_as_executor_lists_the_executors_and_hints_mesapy(
        cli: Cli, parties: dict[str, str]) -> None:
    fid = _echo(cli, parties["acme"])
    r = cli("task", "create", fid, "--executor", "python", "--arguments", '{"message": "x"}',
            profile=parties["alice"])
    assert r.returncode == 1
    assert "executors: builtin, mesapy, wamr" in r.stderr
    assert "run on executor mesapy" in r.stderr


def test_bad_command_lines_are_usage_errors_not_tracebacks(
        cli: Cli, parties: dict[str, str]) -> None:
    alice = parties["alice"]
    r = cli("task", "create", "function-x", "--executor", "builtin", "--arguments", "{oops",
            profile=alice)
    assert r.returncode == 1 and "--arguments is not valid JSON" in r.stderr
    r = cli("task", "create", "function-x", "--executor", "builtin", "--arguments", "[1]",
            profile=alice)
    assert r.returncode == 1 and "must be a JSON object" in r.stderr
    r = cli("task", "assign", "task-x", "--input", "x", profile=alice)
    assert r.returncode == 1 and "--input 'x': expected name=data_id" in r.stderr
    r = cli("file", "register-input", "https://h/x", "--cmac", "zz", "--key-stdin",
            stdin="00" * 16, profile=alice)
    assert r.returncode == 1 and "--cmac is not valid hex" in r.stderr
    r = cli("file", "register-input", "https://h/x", "--cmac", "00" * 16, profile=alice)
    assert r.returncode == 1 and "--key-file FILE or --key-stdin" in r.stderr


def test_wrong_slot_and_missing_approvals_are_named(cli: Cli, parties: dict[str, str],
                                                    tmp_path: Path) -> None:
    acme, alice, bob = parties["acme"], parties["alice"], parties["bob"]
    fid = cli.ok("function", "register", "builtin-echo", "--executor-type", "builtin",
                 "--private", "--allow", "org-a", "--argument", "message", "--input", "data",
                 profile=acme)
    (tmp_path / "d.txt").write_text("x")
    data = cli.ok("file", "upload", tmp_path / "d.txt", profile=alice)
    tid = cli.ok("task", "create", fid, "--executor", "builtin", "--arguments",
                 '{"message": "m"}', "--input-owner", f"data={alice}", profile=alice)
    r = cli("task", "assign", tid, "--input", f"dta={data}", profile=alice)
    assert r.returncode == 1
    assert "PERMISSION_DENIED: permission denied" in r.stderr  # Teaclave's status and text
    assert "the task has no input named 'dta'; its inputs are data" in r.stderr
    assert "assigned data" in cli.ok("task", "assign", tid, "--input", f"data={data}",
                                     profile=alice)
    assert f"waiting for {acme}" in cli.ok("task", "approve", tid, profile=alice)
    assert "already approved" in cli.ok("task", "approve", tid, profile=alice)
    r = cli("task", "invoke", tid, profile=alice)
    assert r.returncode == 4
    assert "UNKNOWN: failed to invoke task" in r.stderr
    assert f"{acme} has not approved" in r.stderr
    r = cli("task", "get", tid, profile=bob)  # not a participant
    assert r.returncode == 2 and "PERMISSION_DENIED" in r.stderr


def test_not_logged_in_and_unknown_ids_exit_2(cli: Cli, parties: dict[str, str]) -> None:
    r = cli("task", "list", profile="nobody")
    assert r.returncode == 2 and "not logged in (profile nobody)" in r.stderr
    r = cli("task", "get", "task-00000000-0000-4000-8000-000000000000",
            profile=parties["alice"])
    assert r.returncode == 2 and "invalid task id" in r.stderr


# -- review, reject, code visibility ------------------------------------------------------
PAYLOAD = "def entrypoint(argv):\n    return 'ran ' + argv[1]\n"


def _python_task(cli: Cli, parties: dict[str, str], tmp_path: Path, review: str
                 ) -> tuple[str, str]:
    code = tmp_path / f"fn-{review}.py"
    code.write_text(PAYLOAD)
    fid = cli.ok("function", "register", "fn", "--executor-type", "python", "--payload", code,
                 "--private", "--allow", "org-a", "--argument", "who", "--code-review", review,
                 profile=parties["acme"])
    tid = cli.ok("task", "create", fid, "--executor", "mesapy", "--arguments",
                 '{"who": "alice"}', profile=parties["alice"])
    cli.ok("task", "assign", tid, profile=parties["alice"])
    return fid, tid


def test_open_review_shows_the_code_and_its_hash(cli: Cli, parties: dict[str, str],
                                                 tmp_path: Path) -> None:
    import hashlib

    _fid, tid = _python_task(cli, parties, tmp_path, "open")
    assert tid in cli.ok("task", "pending", profile=parties["alice"])
    review = json.loads(cli.ok("task", "review", tid, "--json", profile=parties["alice"]))
    assert review["function"]["code"] == PAYLOAD
    assert review["function"]["sha256"] == hashlib.sha256(PAYLOAD.encode()).hexdigest()
    assert review["function"]["owner"] == parties["acme"]
    assert review["waiting_for"] == sorted([parties["acme"], parties["alice"]])
    assert review["arguments"] == {"who": "alice"}
    assert cli.ok("task", "review", tid, "--code-out", tmp_path / "c.py",
                  profile=parties["alice"])
    assert (tmp_path / "c.py").read_text() == PAYLOAD


def test_confidential_code_shows_only_hash_and_owner(cli: Cli, parties: dict[str, str],
                                                     tmp_path: Path) -> None:
    fid, tid = _python_task(cli, parties, tmp_path, "confidential")
    review = json.loads(cli.ok("task", "review", tid, "--json", profile=parties["alice"]))
    assert review["function"]["code"] is None and review["function"]["code_visible"] is False
    assert len(review["function"]["sha256"]) == 64
    r = cli("task", "review", tid, "--code-out", tmp_path / "x.py", profile=parties["alice"])
    assert r.returncode == 2 and "confidential" in r.stderr
    assert not (tmp_path / "x.py").exists()
    # The owner opens it: now the participant may read it.
    cli.ok("function", "set-review", fid, "open", profile=parties["acme"])
    review = json.loads(cli.ok("task", "review", tid, "--json", profile=parties["alice"]))
    assert review["function"]["code"] == PAYLOAD
    r = cli("function", "set-review", fid, "confidential", profile=parties["alice"])
    assert r.returncode == 2  # only the owner decides


def test_rejection_blocks_invoke_naming_who_until_withdrawn(
        cli: Cli, parties: dict[str, str], tmp_path: Path) -> None:
    acme, alice = parties["acme"], parties["alice"]
    _fid, tid = _python_task(cli, parties, tmp_path, "open")
    cli.ok("task", "approve", tid, profile=alice)
    cli.ok("task", "reject", tid, "--reason", "not this code", profile=acme)
    assert tid not in cli.ok("task", "pending", profile=acme)
    r = cli("task", "invoke", tid, profile=alice)
    assert r.returncode == 4
    assert f"rejected by {acme}: not this code" in r.stderr
    shown = json.loads(cli.ok("task", "get", tid, "--json", profile=alice))
    assert shown["rejections"] == {acme: "not this code"}
    audit = cli.ok("audit", "query", "reject_task", profile="admin")
    assert "reject_task" in audit
    cli.ok("task", "approve", tid, profile=acme)  # withdraws the rejection
    cli.ok("task", "invoke", tid, profile=alice)
    done = json.loads(cli.ok("task", "wait", tid, "--json", profile=alice))
    assert done["ok"] is True and done["result"] == "ran alice"


# -- profiles, --json, the data path ----------------------------------------------------
def test_profiles_keep_users_apart(cli: Cli, parties: dict[str, str]) -> None:
    rows = json.loads(cli.ok("profile", "list", "--json"))
    users = {r["profile"]: r["user_id"] for r in rows}
    assert users[parties["alice"]] == parties["alice"] and users["admin"] == "admin"
    me = json.loads(cli.ok("user", "whoami", "--json", profile=parties["bob"]))
    assert me["user_id"] == parties["bob"] and me["logged_in"] is True
    r = cli("--profile", "../x", "task", "list")
    assert r.returncode == 1 and "invalid profile name" in r.stderr


def test_upload_and_download_round_trip_and_refuse_a_wrong_cmac(
        cli: Cli, parties: dict[str, str], tmp_path: Path) -> None:
    alice = parties["alice"]
    plain = tmp_path / "big.bin"
    plain.write_bytes(os.urandom(3 * 1024 * 1024 + 5))  # several segments
    up = json.loads(cli.ok("file", "upload", plain, "--json", profile=alice))
    assert up["size"] == plain.stat().st_size and len(up["cmac"]) == 32
    info = json.loads(cli.ok("file", "info", up["data_id"], "--json", profile=alice))
    assert info["cmac"] == up["cmac"] and info["owners"] == [alice]
    cli.ok("file", "download", up["data_id"], "-o", tmp_path / "back.bin", profile=alice)
    assert (tmp_path / "back.bin").read_bytes() == plain.read_bytes()
    r = cli("file", "download", up["data_id"], "-o", tmp_path / "bad.bin", "--cmac", "00" * 16,
            profile=alice)
    assert r.returncode == 3 and "does not verify" in r.stderr
    assert not (tmp_path / "bad.bin").exists()
    assert not list(tmp_path.glob(".bad.bin.*"))  # no partial plaintext left behind
    keys = json.loads(cli.ok("file", "keys", "--json", profile=alice))
    assert up["data_id"] in {k["data_id"] for k in keys}
    out = cli.ok("file", "new-output", profile=alice)
    r = cli("file", "download", out, "-o", tmp_path / "o.bin", profile=alice)
    assert r.returncode == 4 and "has not been written yet" in r.stderr
