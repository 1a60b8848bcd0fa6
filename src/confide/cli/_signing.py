"""Signed approvals on the command line (docs/signed-approvals.md).

``confide key generate|register|show``: an Ed25519 signing key made on this
machine, kept in the profile encrypted at rest (PKCS#8, scrypt-derived key
from a passphrase: ``CONFIDE_SIGNING_PASSPHRASE`` or a prompt), its public
half registered with the server. The private key never leaves this machine.

``confide task policy|sign|revoke`` and ``confide task receipt get|verify``
are mounted on the ``task`` group; ``confide function require-signed`` on
``function``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .._atomic import write_atomic
from ._common import Json, emit, run, session_client
from ._functions import app as function_app
from ._input import UsageError, parse_pairs
from ._session import Session, _private_dir, profile_dir
from ._tasks import app as task_app

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ..client._attested import TrustInputs

__all__ = ["app", "session_measurements"]

app = typer.Typer(no_args_is_help=True, help="Your signing key (signed approvals).")
receipt_app = typer.Typer(no_args_is_help=True, help="Task receipts signed by the worker.")
task_app.add_typer(receipt_app, name="receipt")

PASSPHRASE_ENV = "CONFIDE_SIGNING_PASSPHRASE"  # noqa: S105 (a variable name)
_KEY_FILE = "signing-key.pem"
_PUB_FILE = "signing-key.pub"


def _key_path() -> Path:
    return profile_dir() / _KEY_FILE


def _passphrase(confirm: bool) -> bytes:
    value = os.environ.get(PASSPHRASE_ENV)
    if value is None:
        value = typer.prompt("signing key passphrase", hide_input=True,
                             confirmation_prompt=confirm)
    if len(value) < 8:
        raise UsageError("the signing key passphrase is at least 8 characters")
    return value.encode()


def load_private_key() -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = _key_path()
    if not path.is_file():
        raise UsageError("this profile has no signing key: run `confide key generate`")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), _passphrase(False))
    except (ValueError, TypeError) as e:
        raise UsageError(f"cannot open {path}: wrong passphrase or damaged file") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{path} is not an Ed25519 key")
    return key


def _public_key() -> bytes:
    path = profile_dir() / _PUB_FILE
    if not path.is_file():
        raise UsageError("this profile has no signing key: run `confide key generate`")
    try:
        raw = bytes.fromhex(path.read_text().strip())
    except ValueError as e:
        raise UsageError(f"{path} is damaged") from e
    if len(raw) != 32:
        raise UsageError(f"{path} is damaged")
    return raw


@app.command("generate")
def generate(force: Annotated[bool, typer.Option(help="Replace an existing key.")] = False,
             json_out: Json = False) -> None:
    """Make a signing key here, encrypted at rest with a passphrase; prints its fingerprint."""
    def go() -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from ..crypto.approvals import fingerprint, public_key_bytes

        if _key_path().exists() and not force:
            raise UsageError(f"{_key_path()} exists: give --force to replace it")
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.BestAvailableEncryption(_passphrase(True)))
        directory = _private_dir(profile_dir())
        write_atomic(directory / _KEY_FILE, pem)
        public = public_key_bytes(key.public_key())
        write_atomic(directory / _PUB_FILE, public.hex().encode() + b"\n")
        emit({"public_key": public.hex(), "fingerprint": fingerprint(public),
              "path": str(directory / _KEY_FILE)}, json_out,
             f"signing key {fingerprint(public)} kept in {directory / _KEY_FILE} "
             "(register it: confide key register)")
    run(go)


@app.command("register")
def register(json_out: Json = False) -> None:
    """Register this profile's public key with the server (replaces an earlier one; audited)."""
    def go() -> None:
        info = session_client().register_signing_key(_public_key())
        emit({"user_id": info.user_id, "fingerprint": info.fingerprint,
              "registered_at": info.registered_at}, json_out,
             f"registered {info.fingerprint} for {info.user_id}")
    run(go)


@app.command("show")
def show(task_id: Annotated[str, typer.Option("--task", help="The keys of this task's "
                                              "signers instead of yours.")] = "",
         json_out: Json = False) -> None:
    """Fingerprints to compare out of band with the other participants."""
    def go() -> None:
        keys = session_client().signing_keys(task_id)
        rows = [{"user_id": k.user_id, "fingerprint": k.fingerprint,
                 "public_key": k.public_key.hex(), "registered_at": k.registered_at}
                for k in keys]
        emit(rows, json_out, "\n".join(f"{r['user_id']}  {r['fingerprint']}" for r in rows)
             or "no signing key registered")
    run(go)


def _trust() -> TrustInputs | None:
    """The verified trust inputs of the session's data dir (None when it pins a certificate)."""
    from ..attestation import TrustBundle
    from ..client._attested import trust_from_bundle

    session = Session.load()
    if session is None or not session.data_dir:
        return None
    return trust_from_bundle(TrustBundle.load(Path(session.data_dir)))


def _worker_measurements(trust: TrustInputs | None) -> list[bytes]:
    from ..client._signed import EXECUTION_TABLE

    entry = None if trust is None else trust.enclave_info.for_service(EXECUTION_TABLE)
    if entry is None:
        return []
    return [bytes.fromhex(entry.get("mr_enclave") or entry["mrtd"])]


def session_measurements() -> list[bytes]:
    """The worker measurement the session's verified enclave_info allows (a usage error
    when the session pins a certificate instead)."""
    measurements = _worker_measurements(_trust())
    if not measurements:
        raise UsageError("no verified enclave_info to take the worker measurement from "
                         "(the session pins a certificate): use `confide task policy "
                         "--measurement HEX`")
    return measurements


def _parse_groups(items: list[str] | None) -> list[tuple[str, int, list[str]]]:
    groups = []
    for name, spec in parse_pairs(items, "--group", "participant=K:u1,u2,u3").items():
        k, sep, members = spec.partition(":")
        if not sep or not k.isdigit():
            raise UsageError(f"--group {name}={spec}: write K:u1,u2,u3")
        groups.append((name, int(k), [m for m in members.split(",") if m]))
    return groups


@task_app.command("policy")
def policy(
    task_id: str,
    group: Annotated[list[str] | None, typer.Option(
        help="participant=K:u1,u2,u3 — K of these sign for that participant")] = None,
    expires_in: Annotated[int, typer.Option(help="Seconds the approvals stay valid.")] = 86400,
    measurement: Annotated[list[str] | None, typer.Option(
        help="Allowed worker measurement (hex). Default: the execution service's in the "
             "verified enclave_info.")] = None,
    json_out: Json = False,
) -> None:
    """Require signed approvals of a task you created (before anyone approves)."""
    def go() -> None:
        try:
            measurements = [bytes.fromhex(m) for m in measurement or []]
        except ValueError as e:
            raise UsageError("--measurement is hex") from e
        measurements = measurements or _worker_measurements(_trust())
        if not measurements:
            raise UsageError("give --measurement (the session pins a certificate, so there "
                             "is no verified enclave_info to take it from)")
        if expires_in <= 0:
            raise UsageError("--expires-in is positive")
        not_after = int(dt.datetime.now(dt.UTC).timestamp()) + expires_in
        groups = _parse_groups(group)
        session_client().set_approval_policy(task_id, measurements=measurements, groups=groups,
                                             not_after=not_after)
        emit({"task_id": task_id, "not_after": not_after,
              "measurements": [m.hex() for m in measurements],
              "groups": [{"name": n, "k": k, "members": m} for n, k, m in groups]}, json_out,
             f"{task_id} requires signed approvals until {not_after} (unix seconds)")
    run(go)


def _digest_path(task_id: str) -> Path:
    return _private_dir(profile_dir() / "approvals") / f"{task_id.replace('/', '_')}.digest"


@task_app.command("sign")
def sign(task_id: str,
         invoke: Annotated[bool, typer.Option(
             "--invoke", help="Also invoke the task in the same call (its creator, as the "
                              "last signer); if it is not ready then, nothing is recorded.")
         ] = False,
         json_out: Json = False) -> None:
    """Check the task's statement here and sign it with your key (a signed approval)."""
    def go() -> None:
        key = load_private_key()
        trust = _trust()
        allowed = _worker_measurements(trust) if trust is not None else None
        digest = session_client().sign_approval(task_id, key, allowed_measurements=allowed,
                                                invoke=invoke)
        write_atomic(_digest_path(task_id), digest.hex().encode() + b"\n")
        emit({"task_id": task_id, "digest": digest.hex(), "invoked": invoke}, json_out,
             f"signed {task_id}{' and invoked it' if invoke else ''}: statement digest "
             f"{digest.hex()}")
    run(go)


@task_app.command("revoke")
def revoke(task_id: str, json_out: Json = False) -> None:
    """Withdraw your approval (signed or not) before the task runs."""
    def go() -> None:
        session_client().revoke_approval(task_id)
        emit({"task_id": task_id, "revoked": True}, json_out, f"revoked your approval of "
             f"{task_id}")
    run(go)


@function_app.command("require-signed")
def require_signed(function_id: str,
                   off: Annotated[bool, typer.Option("--off", help="Stop requiring.")] = False,
                   json_out: Json = False) -> None:
    """Tasks created from your function from now on need signed approvals."""
    def go() -> None:
        session_client().set_function_approval_policy(function_id, not off)
        emit({"function_id": function_id, "require_signed": not off}, json_out,
             f"{function_id}: signed approvals {'not ' if off else ''}required")
    run(go)


@receipt_app.command("get")
def receipt_get(task_id: str,
                output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
                json_out: Json = False) -> None:
    """Save the receipt the worker signed (default: TASK_ID.receipt)."""
    def go() -> None:
        data = session_client().get_receipt(task_id)
        path = output or Path(f"{task_id}.receipt")
        write_atomic(path, data)
        emit({"task_id": task_id, "path": str(path), "bytes": len(data)}, json_out,
             f"saved the receipt of {task_id} to {path} ({len(data)} bytes)")
    run(go)


@receipt_app.command("verify")
def receipt_verify(
    receipt: Path,
    data_dir: Annotated[Path, typer.Option(
        "--data-dir", "-d", envvar="CONFIDE_DATA_DIR",
        help="Trust files: enclave_info.toml, auditors/, as-root-ca.pem[, sim-dcap-root.der].")
    ] = Path("confide-data"),
    task_id: Annotated[str, typer.Option("--task", help="The task it must be of.")] = "",
    approved_digest: Annotated[str, typer.Option(
        help="The statement digest you signed (hex). Default: the one `task sign` kept.")
    ] = "",
    output: Annotated[list[str] | None, typer.Option(
        help="name=PATH of an output's ciphertext you downloaded")] = None,
    schema: Annotated[str, typer.Option(help="The outputs' crypto schema.")] = "",
    previous: Annotated[list[Path] | None, typer.Option(
        help="The receipt of a task whose output this one consumed (fusion chain); verified "
             "too.")] = None,
    json_out: Json = False,
) -> None:
    """Verify a receipt offline: evidence to a trusted root, measurement against the
    auditor-signed enclave_info, signature, and that it matches what you approved."""
    def go() -> None:
        from ..attestation import TrustBundle
        from ..client import verify_receipt
        from ..client._attested import trust_from_bundle
        from ..crypto import DEFAULT_SCHEMA, CryptoError, compute_cmac

        digest: bytes | None = None
        try:
            if approved_digest:
                digest = bytes.fromhex(approved_digest)
            elif task_id and _digest_path(task_id).is_file():
                digest = bytes.fromhex(_digest_path(task_id).read_text().strip())
        except ValueError as e:
            raise UsageError("--approved-digest is hex") from e
        cmacs = {}
        for name, path in parse_pairs(output, "--output", "name=PATH").items():
            try:
                with open(path, "rb") as f:
                    cmacs[name] = compute_cmac(schema or DEFAULT_SCHEMA, f)
            except CryptoError as e:
                raise UsageError(f"--output {name}: {e}") from e
        trust = trust_from_bundle(TrustBundle.load(data_dir))
        now = dt.datetime.now(dt.UTC)
        earlier = [verify_receipt(path.read_bytes(), trust, now=now) for path in previous or []]
        r = verify_receipt(receipt.read_bytes(), trust, now=now, approved_digest=digest,
                           output_cmacs=cmacs, task_id=task_id or None, chained_from=earlier)
        body = r.body
        emit({"task_id": body.task_id, "outcome": body.outcome, "verified": True,
              "statement_digest": body.statement_digest.hex(),
              "approvals": len(body.approvals), "checked_digest": digest is not None,
              "checked_outputs": sorted(cmacs),
              "chained_from": [e.body.task_id for e in earlier],
              "outputs": {n: c.hex() for n, c in body.outputs},
              "started_ms": body.started_ms, "ended_ms": body.ended_ms}, json_out,
             f"receipt of {body.task_id} verifies: {body.outcome}, "
             f"{len(body.approvals)} signed approvals"
             + ("" if digest is None else ", matches the statement you signed")
             + (f", outputs {', '.join(sorted(cmacs))} match" if cmacs else ""))
    run(go)
