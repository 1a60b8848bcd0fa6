"""Signed approvals and receipts through the installed ``confide`` command (issue 15).

Keys are made and kept encrypted in each profile; the receipt verifies offline with
``confide task receipt verify`` against the data dir's trust files, and a copy with
one byte changed does not.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from .test_cli_errors_and_review import Cli, cli  # noqa: F401 (the fixture)

PASSPHRASE = "correct horse battery"


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFIDE_SIGNING_PASSPHRASE", PASSPHRASE)


def _signer(cli: Cli, name: str, role: str, attribute: str = "") -> str:  # noqa: F811
    uid = cli.user(name, role, attribute)
    out = json.loads(cli.ok("key", "generate", "--json", profile=uid))
    key_file = Path(out["path"])
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in key_file.read_bytes()  # encrypted at rest
    cli.ok("key", "register", profile=uid)
    return uid


def test_two_parties_sign_and_the_receipt_verifies_offline(cli: Cli, tmp_path: Path  # noqa: F811
                                                           ) -> None:
    acme = _signer(cli, "acme", "FunctionOwner")
    alice = _signer(cli, "alice", "DataOwner", "org-s")
    fid = cli.ok("function", "register", "builtin-echo", "--executor-type", "builtin",
                 "--private", "--allow", "org-s", "--argument", "message", profile=acme)
    tid = cli.ok("task", "create", fid, "--executor", "builtin", "--arguments",
                 '{"message": "signed hello"}', profile=alice)
    cli.ok("task", "policy", tid, "--expires-in", "3600", profile=alice)
    # The co-participant's fingerprint, as it would be compared out of band.
    shown = json.loads(cli.ok("key", "show", "--task", tid, "--json", profile=acme))
    assert {r["user_id"] for r in shown} == {acme, alice}
    # An unsigned approval does not count on this task.
    assert cli("task", "approve", tid, profile=acme).returncode == 4
    # Signing and invoking at once is the creator's, and only once the task is ready.
    assert cli("task", "sign", tid, "--invoke", profile=acme).returncode == 2  # not creator
    assert cli("task", "sign", tid, "--invoke", profile=alice).returncode == 4  # acme missing
    cli.ok("task", "sign", tid, profile=acme)
    out = json.loads(cli.ok("task", "sign", tid, "--invoke", "--json", profile=alice))
    assert out["invoked"] is True
    cli.ok("task", "wait", tid, profile=alice)
    receipt = tmp_path / "r.receipt"
    cli.ok("task", "receipt", "get", tid, "-o", receipt, profile=alice)
    out = json.loads(cli.ok("task", "receipt", "verify", receipt, "-d", cli.server.data_dir,
                            "--task", tid, "--json", profile=alice))
    assert out["verified"] and out["checked_digest"] and out["approvals"] == 2
    assert out["outcome"] == "ok"
    # One byte changed: refused, with the reason, exit 3 (data that does not verify).
    raw = receipt.read_bytes()
    bad = tmp_path / "bad.receipt"
    bad.write_bytes(raw[:200] + bytes([raw[200] ^ 0x40]) + raw[201:])
    proc = cli("task", "receipt", "verify", bad, "-d", cli.server.data_dir, profile=alice)
    assert proc.returncode == 3 and "RECEIPT_INVALID" in proc.stderr, proc.stderr
    # Not what I approved: refused.
    proc = cli("task", "receipt", "verify", receipt, "-d", cli.server.data_dir,
               "--approved-digest", "00" * 32, profile=alice)
    assert proc.returncode == 3 and "another statement" in proc.stderr, proc.stderr


def test_create_requiring_signatures_then_sign_and_invoke(cli: Cli) -> None:  # noqa: F811
    """Two commands for a creator who is the only signer: create with the policy, sign+invoke."""
    acme = _signer(cli, "acme2", "FunctionOwner")
    alice = _signer(cli, "alice2", "DataOwner", "org-t")
    fid = cli.ok("function", "register", "builtin-echo", "--executor-type", "builtin",
                 "--argument", "message", profile=acme)
    made = json.loads(cli.ok("task", "create", fid, "--executor", "builtin", "--arguments",
                             '{"message": "two steps"}', "--require-signed", "--json",
                             profile=alice))
    tid = made["task_id"]
    assert made["require_signed"] is True
    assert cli("task", "approve", tid, profile=alice).returncode == 4  # a signature it needs
    cli.ok("task", "sign", tid, "--invoke", profile=alice)
    cli.ok("task", "wait", tid, profile=alice)
    plain = cli.ok("task", "create", fid, "--executor", "builtin", "--arguments",
                   '{"message": "plain"}', profile=alice)
    assert cli("task", "sign", plain, profile=alice).returncode == 4  # nothing to sign


def test_wrong_passphrase_is_a_clear_error(cli: Cli, monkeypatch: pytest.MonkeyPatch  # noqa: F811
                                           ) -> None:
    uid = _signer(cli, "carol", "DataOwner", "org-c")
    monkeypatch.setenv("CONFIDE_SIGNING_PASSPHRASE", "not the passphrase")
    proc = cli("task", "sign", "task-00000000-0000-0000-0000-000000000000", profile=uid)
    assert proc.returncode == 1 and "wrong passphrase" in proc.stderr, proc.stderr


def test_key_generate_refuses_to_overwrite(cli: Cli) -> None:  # noqa: F811
    uid = _signer(cli, "dave", "DataOwner", "org-d")
    proc = cli("key", "generate", profile=uid)
    assert proc.returncode == 1 and "--force" in proc.stderr
