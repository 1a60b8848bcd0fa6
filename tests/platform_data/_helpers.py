"""Shared steps of the data-path tests: parties, uploads, one-call task runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from confide.client import Client, FunctionArgument, FunctionFile, Task
from tests.platform._server import Server

ZERO16 = bytes(16)

#: Teaclave's encrypted fixtures (vectors README §A): path -> (schema, key, cmac hex).
TEACLAVE_FILES: dict[str, tuple[str, bytes, str]] = {
    "gbdt_training/train.enc": ("teaclave-file-128", ZERO16, "860030495909b84864b991865e9ad94f"),
    "gbdt_training/train.aes_gcm_128": ("aes-gcm-128", ZERO16,
                                        "592f1e607649d89ff2aa8a2841a57cad"),
    "ordered_set_intersect/psi0.txt.enc": ("teaclave-file-128", ZERO16,
                                           "92f686d4ac2ba6b4ffd93bc7ac5dbf58"),
    "ordered_set_intersect/psi1.txt.enc": ("teaclave-file-128", ZERO16,
                                           "8b3104972a6f0de949315e0b45d5dd66"),
    "ordered_set_join/join0.csv.enc": ("teaclave-file-128", ZERO16,
                                       "3f91d2744763445d265ea469debb74f0"),
    "ordered_set_join/join1.csv.enc": ("teaclave-file-128", ZERO16,
                                       "d1e5a520489c93d0254c8c22cdefab89"),
    "password_check/exposed_passwords.txt.enc": ("teaclave-file-128", ZERO16,
                                                 "a31dd0b7de0b6cc7e0dec1dcf7a46479"),
    "private_join_and_compute/three_party_data/bank_a.enc": (
        "teaclave-file-128", ZERO16, "f6a4585a4903f8dea0ee90ac84a50dba"),
    "private_join_and_compute/three_party_data/bank_b.enc": (
        "teaclave-file-128", ZERO16, "ab6065314fcbacd6971ff55d3821b51e"),
    "private_join_and_compute/three_party_data/bank_c.enc": (
        "teaclave-file-128", ZERO16, "9d7dbe465806731a43008ab094c97688"),
    "rsa_sign/rsakey.enc": ("teaclave-file-128", ZERO16, "620c16ab588ca638f3b0a2692ab078cf"),
}
GCM_IV = {"gbdt_training/train.aes_gcm_128": bytes([1] * 12)}

#: A Python (MesaPy-contract) function copying input ``in`` to output ``out``.
PY_COPY = """
def entrypoint(argv):
    data = teaclave_open('in', 'rb').read()
    with teaclave_open('out', 'wb') as f:
        f.write(data)
    return 'copied %d bytes' % len(data)
"""


@dataclass(frozen=True)
class Party:
    uid: str
    client: Client


def party(server: Server, role: str = "DataOwner", attribute: str = "org") -> Party:
    uid, client = server.new_user(role, attribute)
    return Party(uid, client)


def put_ciphertext(client: Client, data: bytes, file_name: str) -> str:
    """Upload bytes as they are (already encrypted) to the blob store; the GET URL."""
    urls = client.blob_urls(file_name)
    resp = httpx.put(urls.put_url, content=data,
                     headers={"Content-Type": "application/x-binary"})
    assert resp.status_code == 200, resp.text
    return urls.get_url


def blob_status(url: str) -> int:
    return httpx.get(url).status_code


def register_teaclave_fixture(p: Party, functions_dir: Path, rel: str,
                              data: bytes | None = None) -> str:
    """Host a Teaclave fixture on the blob store under its own name, register it."""
    schema, key, cmac = TEACLAVE_FILES[rel]
    blob = (functions_dir / rel).read_bytes() if data is None else data
    url = put_ciphertext(p.client, blob, Path(rel).name)
    return p.client.register_input_file(url, schema=schema, key=key,
                                        iv=GCM_IV.get(rel, b""), cmac=bytes.fromhex(cmac))


def register_function(owner: Client, name: str, *, executor_type: str,
                      arguments: Sequence[str] = (), inputs: Sequence[str] = (),
                      outputs: Sequence[str] = (), payload: bytes = b"") -> str:
    return owner.register_function(
        name, executor_type=executor_type, payload=payload,
        arguments=[FunctionArgument(a) for a in arguments],
        inputs=[FunctionFile(n) for n in inputs], outputs=[FunctionFile(n) for n in outputs])


def run_task(creator: Party, function_id: str, arguments: Mapping[str, Any], *,
             executor: str, inputs: Mapping[str, tuple[Sequence[Party], str]] | None = None,
             outputs: Mapping[str, tuple[Sequence[Party], str]] | None = None,
             timeout: float = 60.0) -> Task:
    """Create, assign (each file by its first owner), approve by all, invoke, wait."""
    inputs, outputs = inputs or {}, outputs or {}
    tid = creator.client.create_task(
        function_id, arguments, executor=executor,
        inputs_ownership={n: [p.uid for p in owners] for n, (owners, _) in inputs.items()},
        outputs_ownership={n: [p.uid for p in owners] for n, (owners, _) in outputs.items()})
    everyone = {creator.uid: creator}
    for kind, files in (("inputs", inputs), ("outputs", outputs)):
        for name, (owners, data_id) in files.items():
            owners[0].client.assign_data(tid, **{kind: {name: data_id}})
            everyone.update({p.uid: p for p in owners})
    for p in everyone.values():
        p.client.approve_task(tid)
    creator.client.invoke_task(tid)
    return creator.client.wait(tid, timeout)
