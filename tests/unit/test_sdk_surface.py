"""``confide.client`` is the SDK only: its public surface is pinned, and importing it
loads neither the CLI nor any server-side package (a client machine holds no server)."""

from __future__ import annotations

import json
import subprocess
import sys

import confide.client as sdk


def test_sdk_all_is_pinned_and_sorted() -> None:
    assert sdk.__all__ == [
        "AttestedEndpoint",
        "AuditEntry",
        "AuditProofError",
        "BlobUrls",
        "Client",
        "ClientError",
        "EncryptedFile",
        "Endpoint",
        "FunctionArgument",
        "FunctionFile",
        "OutputLocation",
        "ParticipantAudit",
        "ParticipantAuditEntry",
        "PendingTask",
        "ProbeError",
        "ReceiptError",
        "Rejection",
        "ReviewedFile",
        "ReviewedFunction",
        "ServerAttestationError",
        "SignedTreeHead",
        "SigningKeyInfo",
        "Task",
        "TaskReview",
        "TaskStatus",
        "Violation",
        "health_status",
        "verify_receipt",
    ]
    assert sdk.__all__ == sorted(sdk.__all__)
    for name in sdk.__all__:
        assert hasattr(sdk, name), name


def test_importing_the_sdk_loads_no_server_side_package_and_no_cli() -> None:
    code = ("import json, sys, confide.client; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('confide.'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                       text=True, check=True).stdout)
    forbidden = {"server", "services", "storage", "api", "execution", "executors", "cli"}
    assert [m for m in loaded if m.split(".")[1] in forbidden] == []
    assert "confide.client._sdk" in loaded  # the probe really imported the SDK


def test_cli_modules_are_gone_from_the_sdk() -> None:
    import importlib.util

    for old in ("cli", "cli_crypto", "cli_attest", "_demo", "_session"):
        assert importlib.util.find_spec(f"confide.client.{old}") is None, old


def test_a_server_certificate_that_is_not_one_is_a_clear_client_error() -> None:
    import pytest

    from confide.client import Client, ClientError

    with pytest.raises(ClientError, match="not a PEM or DER certificate") as e:
        Client.connect("127.0.0.1", server_cert=b"not a certificate", authentication_port=1,
                       frontend_port=1, timeout=1.0)
    assert e.value.code == "INVALID_ARGUMENT"
