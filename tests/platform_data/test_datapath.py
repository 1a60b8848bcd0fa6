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


# --- fusion data -----------------------------------------------------------------------------

PY_FUSE = """
def entrypoint(argv):
    a = teaclave_open('in_a', 'rb').read()
    b = teaclave_open('in_b', 'rb').read()
    with teaclave_open('fused', 'wb') as f:
        f.write(a + b)
    return 'fused'
"""
PY_SPLIT = """
def entrypoint(argv):
    try:
        data = teaclave_open('fused', 'rb').read()
    except RuntimeError as e:
        for name in ('out_a', 'out_b'):
            with teaclave_open(name, 'wb') as f:
                f.write('no data')
        return 'open failed: ' + str(e)
    lines = data.decode().splitlines()
    with teaclave_open('out_a', 'wb') as f:
        f.write('\\n'.join(l for l in lines if l.startswith('a:')))
    with teaclave_open('out_b', 'wb') as f:
        f.write('\\n'.join(l for l in lines if l.startswith('b:')))
    return '%d lines' % len(lines)
"""


def _fusion_pipeline(server: Server) -> tuple[Party, Party, str, str, str]:
    """Task 1: alice's and bob's inputs into a fusion output both own.

    Returns (alice, bob, fusion output id, second function id, task 1 id).
    """
    alice, bob = party(server, attribute="bank-a"), party(server, attribute="bank-b")
    with server.admin() as admin:
        fuse = register_function(admin, "fuse", executor_type="python", inputs=["in_a", "in_b"],
                                 outputs=["fused"], payload=PY_FUSE.encode())
        split = register_function(admin, "split", executor_type="python", inputs=["fused"],
                                  outputs=["out_a", "out_b"], payload=PY_SPLIT.encode())
    a_in = alice.client.register_upload(alice.client.upload_encrypted(b"a:1\na:2\n"))
    b_in = bob.client.register_upload(bob.client.upload_encrypted(b"b:3\n", schema="aes-gcm-128"))
    fusion = alice.client.register_fusion_output([alice.uid, bob.uid])
    task = run_task(alice, fuse, {}, executor="mesapy",
                    inputs={"in_a": ([alice], a_in), "in_b": ([bob], b_in)},
                    outputs={"fused": ([alice, bob], fusion)})
    assert task.ok is True, task.reason
    assert set(task.tags_map) == {"fused"}
    assert sorted(bob.client.get_output_file(fusion)[0]) == sorted([alice.uid, bob.uid])
    assert bob.client.get_output_file(fusion)[1] == task.tags_map["fused"]
    return alice, bob, fusion, split, task.task_id


def _second_task(alice: Party, bob: Party, fusion: str, split: str) -> tuple[str, object, object]:
    fused_in = alice.client.register_input_from_output(fusion)
    out_a = alice.client.new_output(schema="aes-gcm-256")
    out_b = bob.client.new_output(schema="teaclave-file-128")
    tid = alice.client.create_task(
        split, {}, executor="mesapy", inputs_ownership={"fused": [alice.uid, bob.uid]},
        outputs_ownership={"out_a": [alice.uid], "out_b": [bob.uid]})
    alice.client.assign_data(tid, inputs={"fused": fused_in}, outputs={"out_a": out_a.data_id})
    bob.client.assign_data(tid, outputs={"out_b": out_b.data_id})
    return tid, out_a, out_b


def test_fusion_output_is_chained_into_a_task_both_owners_must_approve(server: Server) -> None:
    alice, bob, fusion, split, _ = _fusion_pipeline(server)
    tid, out_a, out_b = _second_task(alice, bob, fusion, split)
    assert sorted(alice.client.get_task(tid).participants) == sorted([alice.uid, bob.uid])
    alice.client.approve_task(tid)
    with pytest.raises(ClientError):  # bob has not approved yet
        alice.client.invoke_task(tid)
    bob.client.approve_task(tid)
    alice.client.invoke_task(tid)
    task = alice.client.wait(tid, 60)
    assert task.ok is True, task.reason
    assert task.return_value == b"3 lines"
    assert alice.client.download_decrypted(out_a, task.tags_map["out_a"]) == b"a:1\na:2"
    assert bob.client.download_decrypted(out_b, task.tags_map["out_b"]) == b"b:3"


def test_rejects_flipped_byte_in_fusion_file_on_disk(server: Server) -> None:
    """The fusion file is verified when the function opens it: it sees an open error."""
    before = set((server.data_dir / "fusion").glob("*.fusion"))
    alice, bob, fusion, split, _ = _fusion_pipeline(server)
    (target,) = set((server.data_dir / "fusion").glob("*.fusion")) - before
    blob = bytearray(target.read_bytes())
    blob[200] ^= 1  # inside the encrypted metadata node
    target.write_bytes(bytes(blob))
    tid, out_a, _ = _second_task(alice, bob, fusion, split)
    alice.client.approve_task(tid)
    bob.client.approve_task(tid)
    alice.client.invoke_task(tid)
    task = alice.client.wait(tid, 60)
    assert task.ok is True, task.reason
    assert task.return_value == b"open failed: fileio_init: teaclave_ffi_error"
    assert alice.client.download_decrypted(out_a, task.tags_map["out_a"]) == b"no data"


# --- tampering and failures through the platform ---------------------------------------------


def _flip(blob: bytes, index: int) -> bytes:
    out = bytearray(blob)
    out[index] ^= 0x01
    return bytes(out)


def _upload_tampered(p: Party, schema: str, plain: bytes, index: int,
                     cmac: bytes | None = None) -> str:
    name = "tampered.enc"
    blob, key, iv, good = _encrypt(schema, plain, name)
    url = put_ciphertext(p.client, _flip(blob, index) if index >= 0 else blob, name)
    return p.client.register_input_file(url, schema=schema, key=key, iv=iv, cmac=cmac or good)


def _assert_failed_without_upload(p: Party, task: object, out_url: str) -> str:
    from confide.client import Task

    assert isinstance(task, Task)
    assert (task.status, task.ok) == (TaskStatus.FINISHED, False)
    assert task.tags_map == {}
    assert blob_status(out_url) == 404  # nothing was uploaded as a result
    return task.reason


@pytest.mark.parametrize(("schema", "label"), [("aes-gcm-128", "AesGcm128"),
                                               ("aes-gcm-256", "AesGcm256")])
@pytest.mark.parametrize("where", ["ciphertext", "tag"])
def test_rejects_flipped_aes_gcm_byte_before_the_function_runs(
        server: Server, copy_fn: str, schema: str, label: str, where: str) -> None:
    alice = party(server)
    plain = b"x" * 100
    iid = _upload_tampered(alice, schema, plain, 10 if where == "ciphertext" else 100 + 3)
    out = alice.client.new_output()
    reason = _assert_failed_without_upload(alice, _copy(alice, copy_fn, iid, out.data_id),
                                           out.get_url)
    assert reason.startswith(f'{label} File, invalid tag: "') and reason.endswith('"')


def test_rejects_wrong_registered_cmac_for_aes_gcm(server: Server, copy_fn: str) -> None:
    alice = party(server)
    iid = _upload_tampered(alice, "aes-gcm-128", b"hello", -1, cmac=bytes(16))
    out = alice.client.new_output()
    reason = _assert_failed_without_upload(alice, _copy(alice, copy_fn, iid, out.data_id),
                                           out.get_url)
    assert reason.startswith('AesGcm128 File, invalid tag: "')


def test_rejects_flipped_confide_stream_byte_before_the_function_runs(
        server: Server, copy_fn: str) -> None:
    alice = party(server)
    iid = _upload_tampered(alice, "confide-stream-256", os.urandom(3000), 1500)
    out = alice.client.new_output()
    reason = _assert_failed_without_upload(alice, _copy(alice, copy_fn, iid, out.data_id),
                                           out.get_url)
    assert reason.startswith('Corrupted input file: "'), reason


PY_PROBE = """
def entrypoint(argv):
    try:
        teaclave_open('in', 'rb').read()
    except RuntimeError as e:
        return 'open failed: ' + str(e)
    return 'opened'
"""


@pytest.mark.parametrize("case", ["flipped-byte", "wrong-cmac"])
def test_teaclave_file_is_checked_lazily_and_the_function_sees_an_open_error(
        server: Server, case: str) -> None:
    alice = party(server)
    with server.admin() as admin:
        probe = register_function(admin, "probe", executor_type="python", inputs=["in"],
                                  payload=PY_PROBE.encode())
    if case == "flipped-byte":
        iid = _upload_tampered(alice, "teaclave-file-128", b"secret rows\n" * 10, 300)
    else:
        iid = _upload_tampered(alice, "teaclave-file-128", b"secret rows\n", -1, cmac=bytes(16))
    task = run_task(alice, probe, {}, executor="mesapy", inputs={"in": ([alice], iid)})
    assert task.ok is True, task.reason
    assert task.return_value == b"open failed: fileio_init: teaclave_ffi_error"


def test_builtin_reports_corrupted_teaclave_fixture(server: Server, functions_dir: Path) -> None:
    alice = party(server)
    rel = "gbdt_training/train.enc"
    iid = register_teaclave_fixture(alice, functions_dir, rel,
                                    data=_flip((functions_dir / rel).read_bytes(), 1000))
    with server.admin() as admin:
        fid = register_function(admin, "builtin-gbdt-train", executor_type="builtin",
                                arguments=GBDT_ARGS, inputs=["training_data"],
                                outputs=["trained_model"])
    out = alice.client.new_output(schema="teaclave-file-128")
    task = run_task(alice, fid, GBDT_ARGS, executor="builtin",
                    inputs={"training_data": ([alice], iid)},
                    outputs={"trained_model": ([alice], out.data_id)})
    reason = _assert_failed_without_upload(alice, task, out.get_url)
    assert reason.startswith('Corrupted input file: "'), reason


GBDT_ARGS = {"feature_size": 4, "max_depth": 4, "iterations": 100, "shrinkage": 0.1,
             "feature_sample_ratio": 1.0, "data_sample_ratio": 1.0, "min_leaf_size": 1,
             "loss": "LAD", "training_optimization_level": 2}

PY_WRITE_ONLY_A = """
def entrypoint(argv):
    with teaclave_open('a', 'wb') as f:
        f.write(b'half of the result')
    return 'done'
"""


@pytest.mark.parametrize(("schema", "reason"), [
    ("aes-gcm-128", "Convert aes-gcm-128: failed to open src file"),
    ("teaclave-file-128", "Convert teaclave_file: failed to open src file"),
])
def test_rejects_missing_output_and_uploads_none_of_the_outputs(
        server: Server, schema: str, reason: str) -> None:
    alice = party(server)
    with server.admin() as admin:
        fid = register_function(admin, "write-a", executor_type="python", outputs=["a", "b"],
                                payload=PY_WRITE_ONLY_A.encode())
    out_a = alice.client.new_output(schema=schema)
    out_b = alice.client.new_output(schema=schema)
    task = run_task(alice, fid, {}, executor="mesapy",
                    outputs={"a": ([alice], out_a.data_id), "b": ([alice], out_b.data_id)})
    assert _assert_failed_without_upload(alice, task, out_b.get_url) == reason
    assert blob_status(out_a.get_url) == 404  # the written output was not uploaded either


def test_failed_builtin_uploads_none_of_its_outputs(server: Server) -> None:
    """ordered-set-intersect creates both outputs, then finds the input unsorted."""
    alice = party(server)
    with server.admin() as admin:
        fid = register_function(admin, "builtin-ordered-set-intersect", executor_type="builtin",
                                arguments=["order"], inputs=["input_data1", "input_data2"],
                                outputs=["output_result1", "output_result2"])
    ins = {n: alice.client.register_upload(alice.client.upload_encrypted(d)) for n, d in
           (("input_data1", b"0b\n0a\n"), ("input_data2", b"0a\n"))}
    outs = {n: alice.client.new_output() for n in ("output_result1", "output_result2")}
    task = run_task(alice, fid, {"order": "ascending"}, executor="builtin",
                    inputs={n: ([alice], i) for n, i in ins.items()},
                    outputs={n: ([alice], o.data_id) for n, o in outs.items()})
    assert _assert_failed_without_upload(alice, task, outs["output_result1"].get_url) == \
        "Invalid ordering"
    assert blob_status(outs["output_result2"].get_url) == 404


PY_RAISE_AFTER_WRITE = """
def entrypoint(argv):
    f = teaclave_open('out', 'wb')
    f.write(b'written before the exception')
    raise ValueError('function gave up')
"""


def test_python_exception_is_finished_ok_mesapy_exec_error_as_in_teaclave(
        server: Server) -> None:
    """Q17 compatibility (docs/compatibility-python.md): an exception is *Finished + Ok*
    with ``MESAPY_EXEC_ERROR``; what the function wrote is sealed to its owner as usual."""
    alice = party(server)
    with server.admin() as admin:
        fid = register_function(admin, "raise", executor_type="python", outputs=["out"],
                                payload=PY_RAISE_AFTER_WRITE.encode())
    out = alice.client.new_output()
    task = run_task(alice, fid, {}, executor="mesapy", outputs={"out": ([alice], out.data_id)})
    assert (task.ok, task.return_value) == (True, b"MESAPY_EXEC_ERROR")
    assert alice.client.download_decrypted(out, task.tags_map["out"]) == \
        b"written before the exception"


@pytest.mark.parametrize("where", ["missing-object", "missing-http-file", "closed-port"])
def test_unreachable_input_ends_the_task_with_ocall_error(
        server: Server, copy_fn: str, file_host: FileHost, where: str) -> None:
    alice = party(server)
    _blob, key, iv, cmac = _encrypt("aes-gcm-128", b"never fetched", "x.enc")
    if where == "missing-object":
        url = alice.client.blob_urls("x.enc").get_url  # presigned, never uploaded
    elif where == "missing-http-file":
        url = file_host.url("nothing-here.enc")
    else:  # a loopback port the operator did not open
        url = f"http://127.0.0.1:{server.ports['scheduler']}/x.enc"
    iid = alice.client.register_input_file(url, schema="aes-gcm-128", key=key, iv=iv, cmac=cmac)
    out = alice.client.new_output()
    reason = _assert_failed_without_upload(alice, _copy(alice, copy_fn, iid, out.data_id),
                                           out.get_url)
    assert reason == "ocall error = 1"


def test_rejects_assigning_an_output_that_was_already_written(
        server: Server, copy_fn: str) -> None:
    """Q9: an output with a cmac is single-use; a second task may not overwrite it."""
    alice = party(server)
    iid = alice.client.register_upload(alice.client.upload_encrypted(b"once"))
    out = alice.client.new_output()
    assert _copy(alice, copy_fn, iid, out.data_id).ok is True
    tid = alice.client.create_task(copy_fn, {}, executor="mesapy",
                                   inputs_ownership={"in": [alice.uid]},
                                   outputs_ownership={"out": [alice.uid]})
    with pytest.raises(ClientError) as info:
        alice.client.assign_data(tid, outputs={"out": out.data_id})
    assert info.value.code == "PERMISSION_DENIED"
    assert alice.client.download_decrypted(out) == b"once"  # untouched
