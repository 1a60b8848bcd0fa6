"""An unmodified-Teaclave-style client (grpclib, stubs generated from our protos, as
Teaclave's Python SDK users have them) registers Python 2.7 MesaPy functions and gets
MesaPy's results: MesaPy mode is on for Teaclave's RegisterFunction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ._server import Server

PROTOS = Path(__file__).resolve().parents[2] / "src" / "confide" / "rpc" / "protos"

ECHO = b"""\
def entrypoint(argv):
    assert argv[0] == 'message'
    assert argv[1] is not None
    print "echo:", argv[1]
    return argv[1]
"""

NUMPYPY = b"""\
import _numpypy

def entrypoint(argv):
    a = _numpypy.multiarray.array([int(argv[1]), 3])
    return "%s %s %s" % (a / 2, sum(a) / 2, dict(zip(xrange(2), a)).keys())
"""

BROKEN = b"def entrypoint(argv):\n    return 1 +* 2\n"

CLIENT = r'''
import asyncio, json, ssl, sys, time
sys.path.insert(0, sys.argv[1])
from grpclib.client import Channel
from grpclib.exceptions import GRPCError
import teaclave_authentication_service_pb2 as auth
import teaclave_frontend_service_pb2 as fe
import teaclave_common_pb2 as common
from teaclave_authentication_service_grpc import TeaclaveAuthenticationApiStub
from teaclave_frontend_service_grpc import TeaclaveFrontendStub

def context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    return ctx

async def run(f, md, payload, message):
    fid = (await f.RegisterFunction(fe.RegisterFunctionRequest(
        name="mesapy-fn", description="a MesaPy function", executor_type="python",
        payload=payload, public=True,
        arguments=[fe.FunctionArgument(key="message", allow_overwrite=True),
                   fe.FunctionArgument(key="save_log", allow_overwrite=True)],
        usage_quota=-1), metadata=md)).function_id
    tid = (await f.CreateTask(fe.CreateTaskRequest(
        function_id=fid, function_arguments=json.dumps({"message": message, "save_log": "true"}),
        executor="mesapy"), metadata=md)).task_id
    await f.ApproveTask(fe.ApproveTaskRequest(task_id=tid), metadata=md)
    await f.InvokeTask(fe.InvokeTaskRequest(task_id=tid), metadata=md)
    for _ in range(600):
        r = await f.GetTask(fe.GetTaskRequest(task_id=tid), metadata=md)
        if r.status == common.TaskStatus.Finished:
            return r.result.Ok.return_value.decode(), list(r.result.Ok.log)
        time.sleep(0.1)
    raise SystemExit("task did not finish")

async def main(auth_port, fe_port, payloads):
    ch = Channel("127.0.0.1", auth_port, ssl=context())
    a = TeaclaveAuthenticationApiStub(ch)
    token = (await a.UserLogin(auth.UserLoginRequest(id="admin", password="teaclave"))).token
    md = {"id": "admin", "token": token}
    ch.close()
    ch = Channel("127.0.0.1", fe_port, ssl=context())
    f = TeaclaveFrontendStub(ch)
    out = {}
    out["echo"] = await run(f, md, open(payloads + "/echo.py", "rb").read(), "Hello From MesaPy!")
    out["numpypy"] = await run(f, md, open(payloads + "/numpypy.py", "rb").read(), "7")
    try:
        await run(f, md, open(payloads + "/broken.py", "rb").read(), "x")
        out["broken"] = "registered"
    except GRPCError as e:
        out["broken"] = [e.status.value, e.message]
    ch.close()
    print(json.dumps(out))

asyncio.run(main(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
'''


def _stubs(gen: Path) -> None:
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    bin_dir = Path(sys.executable).parent
    protos = sorted(p.name for p in PROTOS.glob("teaclave_*.proto"))
    r = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", f"-I{include}",
                        f"--python_out={gen}", f"--grpclib_python_out={gen}", *protos],
                       capture_output=True, text=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr


def test_teaclave_client_runs_python2_mesapy_functions(server: Server, tmp_path: Path) -> None:
    import json

    gen = tmp_path / "stubs"
    gen.mkdir()
    _stubs(gen)
    payloads = tmp_path / "payloads"
    payloads.mkdir()
    for name, body in (("echo", ECHO), ("numpypy", NUMPYPY), ("broken", BROKEN)):
        (payloads / f"{name}.py").write_bytes(body)
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    r = subprocess.run([sys.executable, str(script), str(gen), str(server.ports["authentication"]),
                        str(server.ports["frontend"]), str(payloads)],
                       capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["echo"] == ["Hello From MesaPy!", ["[INFO function] echo: Hello From MesaPy!"]]
    assert out["numpypy"][0] == "[3 1] 5 [0, 1]"
    status, message = out["broken"]
    assert status == 3 and "line 2" in message and "MesaPy" in message
