"""MesaPy-style functions through Teaclave's wire API (issue 17 item 2).

Every step a Teaclave user takes goes through Teaclave's RPCs
(``TeaclaveFrontend``: RegisterFunction, RegisterInputFile,
RegisterOutputFile, CreateTask, AssignData, ApproveTask, InvokeTask, GetTask,
GetFunction, UpdateFunction) over a client that attested the server first
(``Client.connect_data_dir``). The encrypted files live on a plain HTTP host, as
Teaclave's examples keep them. Python 2.7 payloads run unchanged; state saved
by one task (the model, marshal) is registered with its output cmac as an input
of the next, as Teaclave's ``mesapy_logistic_reg.py`` does.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pytest

from confide.client import Client, ClientError, FunctionArgument, FunctionFile, Task
from confide.crypto import decrypt_stream, encrypt_stream
from tests.mesapy_payloads import payload, table, training_set
from tests.platform._server import Server

from ._httpd import FileHost

EXEC_ERROR = b"MESAPY_EXEC_ERROR"


@dataclass
class Party:
    uid: str
    client: Client


@pytest.fixture(scope="module")
def parties(server: Server) -> Iterator[dict[str, Party]]:
    """An engine owner and a data owner, each on an attested connection."""
    made: dict[str, Party] = {}
    with server.admin() as admin:
        for name, role in (("engine", "FunctionOwner"), ("data", "DataOwner")):
            uid = f"mesapy-{name}-{os.urandom(3).hex()}"
            admin.register_user(uid, "pw-" + uid, role, "org-" + name)
            client = Client.connect_data_dir(
                server.data_dir, "127.0.0.1", authentication_port=server.ports["authentication"],
                frontend_port=server.ports["frontend"])
            client.login(uid, "pw-" + uid)
            made[name] = Party(uid, client)
    yield made
    for p in made.values():
        p.client.close()


def _register(owner: Party, name: str, payload: bytes, *, inputs: tuple[str, ...] = (),
              outputs: tuple[str, ...] = (), arguments: Mapping[str, str] | None = None,
              teaclave_api: bool = True) -> str:
    return owner.client.register_function(
        name, executor_type="python", payload=payload,
        arguments=[FunctionArgument(k, default_value=v, allow_overwrite=True)
                   for k, v in (arguments or {}).items()],
        inputs=[FunctionFile(n) for n in inputs], outputs=[FunctionFile(n) for n in outputs],
        code_review=None if teaclave_api else "open")


def _host_input(p: Party, host: FileHost, plain: bytes,
                schema: str = "aes-gcm-128") -> tuple[str, str, bytes]:
    """Encrypt and host ``plain``; register it (Teaclave's RegisterInputFile)."""
    name = f"in-{os.urandom(4).hex()}"
    key, iv = os.urandom(16), os.urandom(12) if schema == "aes-gcm-128" else b""
    out = io.BytesIO()
    cmac = encrypt_stream(schema, key, iv, io.BytesIO(plain), out, file_name=name)
    (host.root / name).write_bytes(out.getvalue())
    return p.client.register_input_file(host.url(name), schema=schema, key=key, iv=iv,
                                        cmac=cmac), name, key


def _host_output(p: Party, host: FileHost) -> tuple[str, str, bytes]:
    name = f"out-{os.urandom(4).hex()}"
    key = os.urandom(16)
    oid = p.client.register_output_file(host.url(name), schema="teaclave-file-128", key=key)
    return oid, name, key


def _read_output(host: FileHost, name: str, key: bytes, cmac: bytes) -> bytes:
    back = io.BytesIO()
    decrypt_stream("teaclave-file-128", key, b"", io.BytesIO((host.root / name).read_bytes()),
                   back, expected_cmac=cmac, file_name=name)
    return back.getvalue()


def _run(creator: Party, function_id: str, arguments: Mapping[str, object],
         inputs: Mapping[str, str], outputs: Mapping[str, str]) -> Task:
    """Create, assign, approve and invoke through Teaclave's RPCs; poll GetTask."""
    c = creator.client
    tid = c.create_task(function_id, arguments, executor="mesapy",
                        inputs_ownership={n: [creator.uid] for n in inputs},
                        outputs_ownership={n: [creator.uid] for n in outputs})
    c.assign_data(tid, inputs=dict(inputs), outputs=dict(outputs))
    c.approve_task(tid)  # the only participant: the function is public
    c.invoke_task(tid)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        task = c.get_task(tid)
        if task.final:
            return task
        time.sleep(0.2)
    raise AssertionError(f"task {tid} did not finish")


def test_logistic_regression_state_passes_from_training_to_prediction(
        parties: dict[str, Party], file_host: FileHost) -> None:
    engine, data = parties["engine"], parties["data"]
    # one payload, registered as the two functions its operations are
    fid = _register(engine, "mesapy-logreg-train", payload("logreg"), inputs=("train",),
                    outputs=("model",), arguments={"operation": "train", "iterations": "300"})
    predict = _register(engine, "mesapy-logreg-predict", payload("logreg"),
                        inputs=("model", "data"), arguments={"operation": "predict"})
    train, rows, expected = training_set()
    train_id, _, _ = _host_input(data, file_host, train)
    model_out, model_name, model_key = _host_output(data, file_host)
    task = _run(data, fid, {"operation": "train", "iterations": 300},
                {"train": train_id}, {"model": model_out})
    assert task.ok is True, task.reason
    assert task.return_value == b"trained 2 features on 80 rows"
    cmac = task.tags_map["model"]
    assert _read_output(file_host, model_name, model_key, cmac)  # the data owner can read it
    # the saved state becomes an input of the next task, with the cmac the output got
    model_in = data.client.register_input_file(file_host.url(model_name),
                                               schema="teaclave-file-128", key=model_key,
                                               iv=b"", cmac=cmac)
    rows_id, _, _ = _host_input(data, file_host, rows, schema="teaclave-file-128")
    task = _run(data, predict, {"operation": "predict"},
                {"model": model_in, "data": rows_id}, {})
    assert task.ok is True, task.reason
    assert task.return_value.decode().split() == [str(v) for v in expected]


def test_micronumpy_statistics(parties: dict[str, Party], file_host: FileHost) -> None:
    engine, data = parties["engine"], parties["data"]
    fid = _register(engine, "mesapy-stats", payload("column_stats"), inputs=("table",),
                    arguments={"buckets": "3"})
    csv, values = table()
    tid, _, _ = _host_input(data, file_host, csv)
    task = _run(data, fid, {"buckets": "4"}, {"table": tid}, {})
    assert task.ok is True, task.reason
    first = task.return_value.decode().splitlines()[0]
    assert first == f"col0 mean={values[:, 0].mean():.6f} " \
                    f"std={values[:, 0].std(ddof=1):.6f} max={values[:, 0].max():.6f}"
    assert task.return_value.decode().endswith(f"per_bucket={len(values) // 4} "
                                               f"last={format(float(values[-1, -1]), '.12g')}")


def test_csv_from_byte_strings_to_an_encrypted_output(parties: dict[str, Party],
                                                      file_host: FileHost) -> None:
    engine, data = parties["engine"], parties["data"]
    fid = _register(engine, "mesapy-ledger", payload("ledger"), inputs=("ledger",),
                    outputs=("totals",))
    ledger_id, _, _ = _host_input(data, file_host, b"x,1\ny,5.5\nx,2\nbad\n")
    out, name, key = _host_output(data, file_host)
    task = _run(data, fid, {}, {"ledger": ledger_id}, {"totals": out})
    assert task.ok is True, task.reason
    assert task.return_value.startswith(b"accounts=2 skipped=1 first=y average=4.25 ")
    assert _read_output(file_host, name, key, task.tags_map["totals"]) == b"y,5.50\nx,3.00\n"


def test_registration_keeps_the_originalpayload(parties: dict[str, Party]) -> None:
    engine = parties["engine"]
    original = payload("ledger")
    fid = _register(engine, "mesapy-kept", original, inputs=("ledger",), outputs=("totals",))
    f = engine.client.get_function(fid)
    assert f.payload == original and f.executor_type == "python"
    assert hashlib.sha256(f.payload).digest() == hashlib.sha256(original).digest()


def test_untranslatable_python2_is_refused_naming_the_line(parties: dict[str, Party]) -> None:
    engine = parties["engine"]
    bad = b"def entrypoint(argv):\n    x = 1\n    return x +* 2\n"
    with pytest.raises(ClientError) as caught:
        _register(engine, "mesapy-bad", bad)
    assert caught.value.code == "INVALID_ARGUMENT"
    assert "line 3" in str(caught.value) and "MesaPy payload" in str(caught.value)
    # declared MesaPy: refused even though Python 3 could compile it
    with pytest.raises(ClientError, match="line 3"):
        _register(engine, "mesapy-bad2", b"# confide: mesapy\ndef entrypoint(argv):\n"
                                         b"    print('x', end='')\n")


def test_update_function_translates_the_newpayload(parties: dict[str, Party]) -> None:
    from confide.rpc._gen import teaclave_frontend_service_pb2 as pb

    engine, data = parties["engine"], parties["data"]
    fid = _register(engine, "mesapy-upd", b"def entrypoint(argv):\n    return str(7 / 2)\n")
    assert _run(data, fid, {}, {}, {}).return_value == b"3"
    front = engine.client._front
    request = pb.UpdateFunctionRequest(function_id=fid, name="mesapy-upd", executor_type="python",
                                       public=True, usage_quota=-1,
                                       payload=b"def entrypoint(argv):\n    print 'x'\n"
                                               b"    return `7 / 2.0`\n")
    engine.client._call(front.UpdateFunction, request)
    assert _run(data, fid, {}, {}, {}).return_value == b"3.5"
    request.payload = b"def entrypoint(argv):\n    return 1 +* 2\n"
    with pytest.raises(ClientError, match="line 2"):
        engine.client._call(front.UpdateFunction, request)


def test_confide_v1_functions_stay_python3_unless_declared(parties: dict[str, Party]) -> None:
    engine, data = parties["engine"], parties["data"]
    py2 = b"def entrypoint(argv):\n    print 'x'\n    return str(7 / 2)\n"
    v1 = _register(engine, "v1-py2", py2, teaclave_api=False)
    assert _run(data, v1, {}, {}, {}).return_value == EXEC_ERROR  # as before
    py3 = b"def entrypoint(argv):\n    return str(7 / 2)\n"
    assert _run(data, _register(engine, "v1-py3", py3, teaclave_api=False),
                {}, {}, {}).return_value == b"3.5"
    declared = _register(engine, "v1-declared", b"# confide: mesapy\n" + py2, teaclave_api=False)
    assert _run(data, declared, {}, {}, {}).return_value == b"3"
    # and through Teaclave's API a payload may declare Python 3
    teaclave_py3 = _register(engine, "t-py3", b"#!/usr/bin/env python3\n" + py3)
    assert _run(data, teaclave_py3, {}, {}, {}).return_value == b"3.5"
