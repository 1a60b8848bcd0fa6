"""Issue 3 end to end: encrypted inputs hosted on the blob store, a plain HTTP
server and a file root; outputs encrypted to their owners; fusion data chained
into a second task; tampering rejected through the whole platform path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from confide.client import ClientError, TaskStatus
from confide.crypto import encrypt_stream

from tests.platform._server import Server

from ._helpers import (
    PY_COPY,
    Party,
    blob_status,
    party,
    put_ciphertext,
    register_function,
    register_teaclave_fixture,
    run_task,
)
from ._httpd import FileHost

ENCRYPTED_SCHEMAS = ["aes-gcm-128", "aes-gcm-256", "teaclave-file-128", "confide-stream-256"]
KEYS = {"aes-gcm-128": 16, "aes-gcm-256": 32, "teaclave-file-128": 16, "confide-stream-256": 32}


def _key_iv(schema: str) -> tuple[bytes, bytes]:
    return os.urandom(KEYS[schema]), os.urandom(12) if schema.startswith("aes-gcm") else b""


def _encrypt(schema: str, plain: bytes, file_name: str) -> tuple[bytes, bytes, bytes, bytes]:
    """(ciphertext, key, iv, cmac) of ``plain`` in ``schema``."""
    import io

    key, iv = _key_iv(schema)
    out = io.BytesIO()
    cmac = encrypt_stream(schema, key, iv, io.BytesIO(plain), out, file_name=file_name)
    return out.getvalue(), key, iv, cmac


@pytest.fixture(scope="module")
def copy_fn(server: Server) -> str:
    with server.admin() as admin:
        return register_function(admin, "copy", executor_type="python", inputs=["in"],
                                 outputs=["out"], payload=PY_COPY.encode())


def _copy(p: Party, copy_fn: str, input_id: str, output_id: str) -> object:
    return run_task(p, copy_fn, {}, executor="mesapy",
                    inputs={"in": ([p], input_id)}, outputs={"out": ([p], output_id)})


# --- success paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("schema", ENCRYPTED_SCHEMAS)
def test_copy_function_round_trips_blob_store_data_in_every_schema(
        server: Server, copy_fn: str, schema: str) -> None:
    """Owner encrypts + uploads, a Python task copies, the owner decrypts the output."""
    alice = party(server)
    plain = os.urandom(5000) + b"end"  # > 3072: a multi-node teaclave-file-128 file
    upload = alice.client.upload_encrypted(plain, file_name="in.bin", schema=schema)
    out = alice.client.new_output(file_name="out.bin", schema=schema)
    task = _copy(alice, copy_fn, alice.client.register_upload(upload), out.data_id)
    assert (task.status, task.ok, task.reason) == (TaskStatus.FINISHED, True, "")
    assert task.return_value == b"copied 5003 bytes"
    assert alice.client.download_decrypted(out, task.tags_map["out"]) == plain
    assert alice.client.get_output_file(out.data_id) == ([alice.uid], task.tags_map["out"])


@pytest.mark.parametrize("schema", ["aes-gcm-256", "teaclave-file-128"])
def test_copy_function_reads_and_writes_a_plain_http_server(
        server: Server, copy_fn: str, file_host: FileHost, schema: str) -> None:
    alice = party(server)
    plain = b"hosted by the owner\n" * 200
    name = f"in-{os.urandom(4).hex()}.enc"
    blob, key, iv, cmac = _encrypt(schema, plain, name)
    (file_host.root / name).write_bytes(blob)
    iid = alice.client.register_input_file(file_host.url(name), schema=schema, key=key, iv=iv,
                                           cmac=cmac)
    out_name = f"out-{os.urandom(4).hex()}.enc"
    okey, oiv = _key_iv(schema)
    oid = alice.client.register_output_file(file_host.url(out_name), schema=schema, key=okey,
                                            iv=oiv)
    task = _copy(alice, copy_fn, iid, oid)
    assert task.ok is True, task.reason
    import io

    from confide.crypto import decrypt_stream

    back = io.BytesIO()
    decrypt_stream(schema, okey, oiv, io.BytesIO((file_host.root / out_name).read_bytes()), back,
                   expected_cmac=task.tags_map["out"], file_name=out_name)
    assert back.getvalue() == plain


def test_copy_function_reads_a_file_url_inside_the_configured_root(
        server: Server, copy_fn: str, file_root: Path) -> None:
    alice = party(server)
    plain = b"on a mounted volume"
    name = f"in-{os.urandom(4).hex()}.enc"
    blob, key, iv, cmac = _encrypt("confide-stream-256", plain, name)
    (file_root / name).write_bytes(blob)
    iid = alice.client.register_input_file(f"file://{file_root / name}",
                                           schema="confide-stream-256", key=key, iv=iv, cmac=cmac)
    out = alice.client.new_output(schema="aes-gcm-128")
    task = _copy(alice, copy_fn, iid, out.data_id)
    assert task.ok is True, task.reason
    assert alice.client.download_decrypted(out, task.tags_map["out"]) == plain


def test_teaclave_aes_gcm_fixture_is_consumed_with_its_registered_key_and_cmac(
        server: Server, copy_fn: str, functions_dir: Path) -> None:
    alice = party(server)
    iid = register_teaclave_fixture(alice, functions_dir, "gbdt_training/train.aes_gcm_128")
    out = alice.client.new_output()
    task = _copy(alice, copy_fn, iid, out.data_id)
    assert task.ok is True, task.reason
    expected = (functions_dir / "gbdt_training/train.txt").read_bytes()
    assert alice.client.download_decrypted(out, task.tags_map["out"]) == expected
