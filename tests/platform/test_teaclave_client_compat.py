"""An unmodified-Teaclave-style client: grpclib with stubs generated from our protos.

The test generates Python stubs from ``src/confide/rpc/protos/teaclave_*.proto``
with ``grpc_tools.protoc --python_out --grpclib_python_out`` exactly as
Teaclave's SDK users do, then runs a separate process that talks to the server
the way ``sdk/python/teaclave.py`` does (grpclib, TLS without verification,
ALPN h2, ``id``/``token`` metadata): login, register a function, create,
approve and invoke a task, and poll GetTask for the result.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ._server import Server

PROTOS = Path(__file__).resolve().parents[2] / "src" / "confide" / "rpc" / "protos"

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
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20")
    ctx.set_alpn_protocols(["h2"])
    return ctx

async def main(auth_port, fe_port):
    ch = Channel("127.0.0.1", auth_port, ssl=context())
    a = TeaclaveAuthenticationApiStub(ch)
    try:
        await a.UserLogin(auth.UserLoginRequest(id="admin", password="wrong"))
        raise SystemExit("login with a wrong password succeeded")
    except GRPCError as e:
        assert e.status.value == 16 and e.message == "authentication failed", e
    token = (await a.UserLogin(auth.UserLoginRequest(id="admin", password="teaclave"))).token
    md = {"id": "admin", "token": token}
    await a.UserRegister(auth.UserRegisterRequest(id="compat-user", password="pw",
                                                  role="PlatformAdmin"), metadata=md)
    ch.close()
    ch = Channel("127.0.0.1", fe_port, ssl=context())
    f = TeaclaveFrontendStub(ch)
    fid = (await f.RegisterFunction(fe.RegisterFunctionRequest(
        name="builtin-echo", description="Native Echo Function", executor_type="builtin",
        public=True, arguments=[fe.FunctionArgument(key="message", allow_overwrite=True)],
        usage_quota=-1), metadata=md)).function_id
    tid = (await f.CreateTask(fe.CreateTaskRequest(
        function_id=fid, function_arguments=json.dumps({"message": "Hello From Teaclave!"}),
        executor="builtin"), metadata=md)).task_id
    await f.ApproveTask(fe.ApproveTaskRequest(task_id=tid), metadata=md)
    await f.InvokeTask(fe.InvokeTaskRequest(task_id=tid), metadata=md)
    for _ in range(300):
        r = await f.GetTask(fe.GetTaskRequest(task_id=tid), metadata=md)
        if r.status == common.TaskStatus.Finished:
            print(r.result.Ok.return_value.decode())
            break
        time.sleep(0.1)
    else:
        raise SystemExit("task did not finish")
    ch.close()

asyncio.run(main(int(sys.argv[2]), int(sys.argv[3])))
'''


def test_grpclib_client_with_stubs_from_our_protos(server: Server, tmp_path: Path) -> None:
    gen = tmp_path / "stubs"
    gen.mkdir()
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    bin_dir = Path(sys.executable).parent
    protos = sorted(p.name for p in PROTOS.glob("teaclave_*.proto"))
    r = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", f"-I{include}",
                        f"--python_out={gen}", f"--grpclib_python_out={gen}", *protos],
                       capture_output=True, text=True,
                       env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert (gen / "teaclave_frontend_service_grpc.py").exists()
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    r = subprocess.run([sys.executable, str(script), str(gen),
                        str(server.ports["authentication"]), str(server.ports["frontend"])],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "Hello From Teaclave!"
