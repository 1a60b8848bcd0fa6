from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from confide.client import Client, ClientError, FunctionArgument, FunctionFile

KEY16 = bytes(range(16))
IV12 = bytes(range(12))
CMAC = bytes(16)


def expect_error(code: str, message: str | None, fn: Callable[[], Any]) -> ClientError:
    with pytest.raises(ClientError) as info:
        fn()
    assert info.value.code == code, info.value
    if message is not None:
        assert info.value.message == message, info.value
    return info.value


def echo_function(client: Client, **kw: Any) -> str:
    return client.register_function("builtin-echo", executor_type="builtin",
                                    arguments=[FunctionArgument("message")], **kw)


def io_function(client: Client, inputs: list[str], outputs: list[str], **kw: Any) -> str:
    """A function declaring inputs/outputs (for data assignment tests)."""
    return client.register_function(
        "builtin-echo", executor_type="builtin", arguments=[FunctionArgument("message")],
        inputs=[FunctionFile(n) for n in inputs], outputs=[FunctionFile(n) for n in outputs],
        **kw)


def input_file(client: Client) -> str:
    return client.register_input_file(f"https://example.com/{os.urandom(4).hex()}",
                                      schema="aes-gcm-128", key=KEY16, iv=IV12, cmac=CMAC)


def output_file(client: Client) -> str:
    return client.register_output_file(f"https://example.com/{os.urandom(4).hex()}",
                                       schema="aes-gcm-128", key=KEY16, iv=IV12)


def wait_for_status(client: Client, task_id: str, status: int, timeout: float = 20.0) -> None:
    """Poll GetTask until ``status`` (used where the test must act *during* a state)."""
    import time

    deadline = time.monotonic() + timeout
    while (current := client.get_task(task_id).status) != status:
        assert current < status and time.monotonic() < deadline, current
        time.sleep(0.02)


def loop_module() -> bytes:
    """A wasm function that never returns."""
    import wasmtime

    return bytes(wasmtime.wat2wasm("""(module (func (export "entrypoint") (param i32 i32)
        (result i32) (loop $l (br $l)) (i32.const 0)))"""))


def start_endless_task(client: Client) -> str:
    """Register and invoke a task that runs until stopped; returns once it is Running."""
    from confide.client import TaskStatus

    fid = client.register_function("loop", executor_type="wamr", payload=loop_module())
    tid = client.create_task(fid, {}, executor="wamr")
    client.invoke_task(tid)
    wait_for_status(client, tid, TaskStatus.RUNNING)
    return tid


def mounted_anywhere(*paths: Path) -> list[str]:
    """The pids on the host whose mount table has one of ``paths`` as a mount point
    (a mount in a private namespace included, while a process holds it)."""
    holders = []
    for mountinfo in Path("/proc").glob("[0-9]*/mountinfo"):
        with contextlib.suppress(OSError):  # the process is gone
            text = mountinfo.read_text()
            holders += [mountinfo.parent.name for p in paths if f" {p} " in text]
    return holders
