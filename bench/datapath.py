"""Data-path benchmark: confide.crypto throughput and memory vs. ``openssl speed``.

Run on demand (not part of the test suite)::

    PYTHONPATH=src python bench/datapath.py [--size-mib 256] [--openssl-seconds 3]

For each schema it encrypts and decrypts one file of random data, each run in a
fresh subprocess so that its peak RSS (``ru_maxrss`` from ``wait4``) is its own,
and prints MB/s, the ratio to ``openssl speed -evp aes-256-gcm`` (16384-byte
column, one core) and the peak RSS. Times include reading and writing the files
(in a private temporary directory, by default on /dev/shm).

The "stage" column is what a worker does with an input: a blob store (the one
``confide serve`` embeds) on loopback serves the ciphertext, and a fresh process
runs ``confide.execution.Stager`` with the real ``FileAgent`` (HTTP download,
cmac check, decrypt into the private temporary area, removal afterwards); its
throughput, ratio to openssl and peak RSS are printed. Every schema but raw is
staged in one pass (decrypted while the body arrives; teaclave-file-128 in file
order, 97-node groups). The staging process first puts its private area where
a worker does (``mount_private_area``: a tmpfs of its own with large pages when
it has ``CAP_SYS_ADMIN``, as root); ``--stage-area shm`` keeps it the plain
/dev/shm directory an unprivileged worker has, for the A/B. ``--no-stage``
skips it; ``--only stage`` runs only it (and openssl), to spare the shared
machine; ``STAGE_HOOKS`` (schema -> f(encrypted file, key, iv, cmac) -> seconds)
overrides it per schema.

``teaclave-file-128/pure`` is teaclave-file-128 with the optional C extension
switched off (``confide.crypto._pfs._native = None`` in the worker): the A/B of
the native batch path in one run. It is in the default ``--schemas``.

A second table gives the same runs' ratios by CPU time (``time.process_time`` of the
timed region: user + system of the worker process; for "stage" the staging process,
not the blob store serving it). ``openssl speed`` divides by CPU user time, so on a
shared, busy machine the wall-clock ratios grow with the load while these do not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20
CASES: dict[str, tuple[bytes, bytes]] = {
    "aes-gcm-128": (bytes(range(16)), bytes(range(12))),
    "aes-gcm-256": (bytes(range(32)), bytes(range(12))),
    "teaclave-file-128": (bytes(range(16)), b""),
    "confide-stream-256": (bytes(range(32)), b""),
    "raw": (b"", b""),  # copy only: the I/O floor
    # the same schema with the C extension switched off (confide.crypto._pfs._native)
    "teaclave-file-128/pure": (bytes(range(16)), b""),
}
_PURE = "/pure"

#: schema -> f(encrypted_path, key, iv, cmac) -> seconds for download+verify+decrypt.
StageHook = Callable[[Path, bytes, bytes, bytes], float]
STAGE_HOOKS: dict[str, StageHook] = {}


@dataclass
class Row:
    schema: str
    enc_s: float | None  # file to file (None: not measured, --only stage)
    dec_s: float | None
    enc_mem_s: float | None  # memory to a discarding sink: crypto and framing only
    dec_mem_s: float | None
    enc_rss_kib: int | None
    dec_rss_kib: int | None
    stage_s: float | None
    cpu: dict[str, float | None]  # the same runs' CPU seconds (user + system): enc, dec, ...


def _real_schema(schema: str) -> str:
    """The schema to pass to confide; ``…/pure`` also forces the pure-Python path here."""
    if not schema.endswith(_PURE):
        return schema
    from confide.crypto import _pfs

    _pfs._native = None
    return schema.removesuffix(_PURE)


def openssl_speed(seconds: int) -> float:
    """Bytes/s of ``openssl speed -evp aes-256-gcm`` at 16384-byte blocks."""
    out = subprocess.run(
        ["openssl", "speed", "-evp", "aes-256-gcm", "-seconds", str(seconds)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for line in out.splitlines():
        if line.upper().startswith("AES-256-GCM"):
            last = line.split()[-1]
            value = float(re.sub(r"[^0-9.]", "", last))
            return value * 1000  # openssl reports 1000s of bytes per second
    raise RuntimeError(f"cannot parse openssl speed output:\n{out}")


class _NullSink:
    """A seekable destination that discards bytes (the "mem" mode's dst)."""

    def __init__(self) -> None:
        self.pos = 0
        self.end = 0

    def write(self, b: bytes) -> int:
        self.pos += len(b)
        self.end = max(self.end, self.pos)
        return len(b)

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.end + offset}[whence]
        return self.pos

    def tell(self) -> int:
        return self.pos

    def seekable(self) -> bool:
        return True


def _worker(op: str, schema: str, src: str, dst: str, cmac_hex: str, mode: str, reps: str) -> None:
    import io
    from typing import BinaryIO, cast

    from confide.crypto import decrypt_stream, encrypt_stream

    key, iv = CASES[schema]
    schema = _real_schema(schema)
    name = Path(dst if op == "encrypt" else src).name
    expected = bytes.fromhex(cmac_hex) if cmac_hex else None
    data = Path(src).read_bytes() if mode == "mem" else b""
    best = float("inf")
    best_cpu = float("inf")
    cmac = b""
    for _ in range(int(reps)):
        with contextlib.ExitStack() as stack:
            if mode == "mem":
                fin = cast(BinaryIO, io.BytesIO(data))
                fout = cast(BinaryIO, _NullSink())
            else:
                fin = stack.enter_context(open(src, "rb"))
                fout = stack.enter_context(open(dst, "w+b"))
            start, start_cpu = time.perf_counter(), time.process_time()
            if op == "encrypt":
                cmac = encrypt_stream(schema, key, iv, fin, fout, file_name=name)
            else:
                cmac = decrypt_stream(
                    schema, key, iv, fin, fout, file_name=name, expected_cmac=expected
                )
            best = min(best, time.perf_counter() - start)
            best_cpu = min(best_cpu, time.process_time() - start_cpu)
    print(json.dumps({"seconds": best, "cpu": best_cpu, "cmac": cmac.hex()}))


class _BlobStage:
    """The "stage" column: a local blob store serves each ciphertext; a fresh process
    stages it as a worker does (``Stager`` + the real ``FileAgent``: HTTP download,
    cmac check, decrypt into the private area; the input is opened once, as a
    function would) and reports the best of N and its peak RSS."""

    def __init__(self, root: Path, reps: int, area: str) -> None:
        from confide.config import Limits
        from confide.services.blobstore import BlobStore

        self._store = BlobStore(root, os.urandom(32), limits=Limits(), port=0)
        self._store.start()
        self._reps = reps
        self._area = area
        self.area_kind = ""
        self.rss_kib: dict[str, int] = {}
        self.cpu: dict[str, float | None] = {}

    def stop(self) -> None:
        self._store.stop()

    def hook(self, schema: str) -> StageHook:
        def stage(enc: Path, key: bytes, iv: bytes, cmac: bytes) -> float:
            import httpx

            name = f"{os.urandom(8).hex()}/{enc.name}"
            expires = int(time.time()) + 3600
            size = enc.stat().st_size
            with open(enc, "rb") as body:
                resp = httpx.put(
                    self._store.presign(name, "PUT", expires),
                    content=iter(lambda: body.read(MiB), b""),
                    headers={"Content-Length": str(size)}, timeout=600,
                )  # fmt: skip
            if resp.status_code != 200:
                raise RuntimeError(f"blob store refused the upload: {resp.status_code}")
            url = self._store.presign(name, "GET", expires)
            result, rss = _run_worker(
                "stage", schema, url, key.hex(), iv.hex(), cmac.hex(), str(self._reps), self._area
            )  # fmt: skip
            self.area_kind = str(result["area"])
            self.rss_kib[schema] = rss
            self.cpu[schema] = _cpu(result)
            return _secs(result)

        return stage


def _stage_worker(schema: str, url: str, key_hex: str, iv_hex: str, cmac_hex: str,
                  reps: str, area: str) -> None:  # fmt: skip
    from confide.config import Limits
    from confide.execution import Stager
    from confide.execution._private_tmpfs import (
        AreaKind,
        area_tmpfs_bytes,
        mount_private_area,
        release_private_area,
    )
    from confide.execution.file_agent import FileAgent, UrlPolicy
    from confide.staged import StagedFile

    port = int(url.split("/")[2].rsplit(":", 1)[1])
    limits = Limits()
    # As a worker does first thing (one slot); --stage-area shm: the plain directory.
    kind = AreaKind.DIRECTORY
    if area == "worker":
        kind = mount_private_area(area_tmpfs_bytes(1, limits.max_task_area_bytes))
    agent = FileAgent(UrlPolicy.embedded(blob_store_port=port), limits)
    stager = Stager(agent, limits, write_behind=kind.write_behind)
    spec = StagedFile(
        name="in",
        url=url,
        schema=_real_schema(schema),
        key=bytes.fromhex(key_hex),
        iv=bytes.fromhex(iv_hex),
        cmac=bytes.fromhex(cmac_hex),
    )
    best = float("inf")
    best_cpu = float("inf")
    for _ in range(int(reps)):
        start, start_cpu = time.perf_counter(), time.process_time()
        with stager.stage("bench", [spec], []) as staged:
            staged.open_input("in").close()
            elapsed = time.perf_counter() - start
            elapsed_cpu = time.process_time() - start_cpu
        best = min(best, elapsed)
        best_cpu = min(best_cpu, elapsed_cpu)
    release_private_area(kind)  # as the worker does on its way out
    print(json.dumps({"seconds": best, "cpu": best_cpu, "area": str(kind)}))


def _run_worker(*args: str) -> tuple[dict[str, object], int]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--worker", *args], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"worker {args} failed with {proc.returncode}")
    return json.loads(out), usage.ru_maxrss


def measure_stage_only(schema: str, plain: Path, work: Path,
                       stage_hooks: dict[str, StageHook]) -> Row:  # fmt: skip
    """Encrypt in this process (not timed), then only the stage run."""
    from confide.crypto import encrypt_stream

    enc = work / f"data.{schema.replace('/', '-')}.enc"
    key, iv = CASES[schema]
    with open(plain, "rb") as src, open(enc, "wb") as dst:
        cmac = encrypt_stream(schema.removesuffix(_PURE), key, iv, src, dst, file_name=enc.name)
    hook = STAGE_HOOKS.get(schema) or stage_hooks.get(schema)
    stage = hook(enc, key, iv, cmac) if hook else None
    enc.unlink()
    return Row(schema, None, None, None, None, None, None, stage, {})


def measure(
    schema: str, plain: Path, work: Path, reps: int, stage_hooks: dict[str, StageHook] | None = None
) -> Row:
    enc = work / f"data.{schema.replace('/', '-')}.enc"
    back = work / f"data.{schema.replace('/', '-')}.out"
    r = str(reps)
    e, e_rss = _run_worker("encrypt", schema, str(plain), str(enc), "", "file", r)
    d, d_rss = _run_worker("decrypt", schema, str(enc), str(back), str(e["cmac"]), "file", r)
    if os.path.getsize(back) != os.path.getsize(plain):
        raise RuntimeError(f"{schema}: round trip changed the size")
    back.unlink()
    em, _ = _run_worker("encrypt", schema, str(plain), str(enc) + ".mem", "", "mem", r)
    dm, _ = _run_worker("decrypt", schema, str(enc), str(back), str(e["cmac"]), "mem", r)
    hook = STAGE_HOOKS.get(schema) or (stage_hooks.get(schema) if stage_hooks else None)
    key, iv = CASES[schema]
    stage = hook(enc, key, iv, bytes.fromhex(str(e["cmac"]))) if hook else None
    enc.unlink()
    cpu = {"enc": _cpu(e), "dec": _cpu(d), "enc_mem": _cpu(em), "dec_mem": _cpu(dm)}
    return Row(schema, _secs(e), _secs(d), _secs(em), _secs(dm), e_rss, d_rss, stage, cpu)


def _secs(result: dict[str, object]) -> float:
    value = result["seconds"]
    if not isinstance(value, float | int):
        raise TypeError("worker returned no time")
    return float(value)


def _cpu(result: dict[str, object]) -> float | None:
    value = result.get("cpu")
    return float(value) if isinstance(value, float | int) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--openssl-seconds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs per case")
    parser.add_argument("--schemas", default=",".join(CASES))
    parser.add_argument("--no-stage", action="store_true", help="skip the blob-store stage runs")
    parser.add_argument("--only", choices=["all", "stage"], default="all",
                        help="stage: only the blob-store stage runs (and openssl)")  # fmt: skip
    parser.add_argument("--stage-area", choices=["worker", "shm"], default="worker",
                        help="worker: the stage process puts its private area on a tmpfs of its"
                        " own as a worker does (where permitted); shm: a plain directory on"
                        " /dev/shm, as an unprivileged worker has")  # fmt: skip
    parser.add_argument(
        "--dir",
        default="/dev/shm" if os.path.isdir("/dev/shm") else None,
        help="where the files go (default /dev/shm: measure crypto, not the disk)",
    )
    args = parser.parse_args()

    ossl = openssl_speed(args.openssl_seconds)
    size = args.size_mib * MiB
    work = Path(tempfile.mkdtemp(prefix="confide-bench-", dir=args.dir))
    work.chmod(0o700)
    try:
        plain = work / "data.bin"
        with open(plain, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(MiB))
        _, base_rss = _run_worker("baseline")
        schemas = args.schemas.split(",")
        stager = None if args.no_stage else _BlobStage(work / "blobs", args.repeat,
                                                       args.stage_area)
        hooks = {s: stager.hook(s) for s in schemas} if stager else {}
        try:
            if args.only == "stage":
                rows = [measure_stage_only(s, plain, work, hooks) for s in schemas]
            else:
                rows = [measure(s, plain, work, args.repeat, hooks) for s in schemas]
        finally:
            if stager is not None:
                stager.stop()
        stager_rss = stager.rss_kib if stager else {}
        stager_cpu = stager.cpu if stager else {}
        area_kind = stager.area_kind if stager else ""
    finally:
        shutil.rmtree(work)

    print(f"openssl speed -evp aes-256-gcm (16384-byte blocks, 1 core): {ossl / 1e6:,.0f} MB/s")
    print(
        f"{args.size_mib} MiB of random data in {args.dir or tempfile.gettempdir()}, best of "
        f"{args.repeat}; interpreter + import baseline RSS {base_rss / 1024:.1f} MiB"
    )
    if area_kind:
        print(f"stage: the worker's private area is a {area_kind} (--stage-area {args.stage_area})")
    head = (
        f"{'schema':<22} {'enc':>6} {'dec':>6} {'enc/ossl':>8} {'dec/ossl':>8} │ "
        f"{'enc':>6} {'dec':>6} {'enc/ossl':>8} {'dec/ossl':>8} │ {'encRSS':>6} {'decRSS':>6} "
        f"│ {'stage':>6} {'stg/ossl':>8} {'stgRSS':>6}"
    )
    print(
        f"{'':<22} {'file → file, MB/s':^31} │ {'memory → sink, MB/s':^31} │ {'peak MiB':^13} "
        f"│ {'blob store → worker':^22}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        cells = []
        for enc_s, dec_s in ((r.enc_s, r.dec_s), (r.enc_mem_s, r.dec_mem_s)):
            if enc_s is None or dec_s is None:
                cells.append(f"{'-':>6} {'-':>6} {'-':>8} {'-':>8}")
                continue
            enc_bps, dec_bps = size / enc_s, size / dec_s
            cells.append(
                f"{enc_bps / 1e6:6.0f} {dec_bps / 1e6:6.0f} "
                f"{ossl / enc_bps:7.2f}x {ossl / dec_bps:7.2f}x"
            )
        rss_cells = " ".join(
            f"{v / 1024:6.1f}" if v is not None else f"{'-':>6}"
            for v in (r.enc_rss_kib, r.dec_rss_kib)
        )
        if r.stage_s:
            stage_bps = size / r.stage_s
            rss = stager_rss.get(r.schema)
            stage = (f"{stage_bps / 1e6:6.0f} {ossl / stage_bps:7.2f}x "
                     f"{rss / 1024 if rss else float('nan'):6.1f}")  # fmt: skip
        else:
            stage = f"{'-':>6} {'-':>8} {'-':>6}"
        print(f"{r.schema:<22} {cells[0]} │ {cells[1]} │ {rss_cells} │ {stage}")
    stage_cpu = stager_cpu
    print()
    print("The same runs by CPU time (user + system of the timed process; `openssl speed` divides")
    print("by CPU user time too, so on a busy machine these ratios are the comparable ones):")
    cpu_head = (f"{'schema':<22} {'enc/ossl':>8} {'dec/ossl':>8} │ {'enc/ossl':>8} {'dec/ossl':>8} "
                f"│ {'stg/ossl':>8}")  # fmt: skip
    print(f"{'':<22} {'file → file':^17} │ {'memory → sink':^17} │ {'stage':^8}")
    print(cpu_head)
    print("-" * len(cpu_head))
    for r in rows:

        def ratio(seconds: float | None) -> str:
            return f"{ossl * seconds / size:7.2f}x" if seconds else f"{'-':>8}"

        c = r.cpu
        print(f"{r.schema:<22} {ratio(c.get('enc'))} {ratio(c.get('dec'))} │ "
              f"{ratio(c.get('enc_mem'))} {ratio(c.get('dec_mem'))} │ "
              f"{ratio(stage_cpu.get(r.schema))}")  # fmt: skip
    print(
        "x = openssl throughput / confide throughput (target <= 3x). stage = HTTP download from"
        " a local blob store (sendfile) + cmac check + decrypt into the private area, through"
        " Stager and the real FileAgent, in a fresh process (stgRSS = its peak RSS). aes-gcm and"
        " confide-stream-256 are one pass: the body is received (recv_into, 1 MiB) straight into"
        " the decryptor's buffer and plaintext written as it verifies (teaclave-file-128 too, one"
        " 97-node group at a time). teaclave-file-128 (not /pure) writes to a file on a helper"
        " thread while it reads and seals or opens the next round, so file → file (and stage with"
        " --stage-area shm) use a second core: its CPU ratios count both threads; on the worker's"
        " own large-page tmpfs writes are cheaper than the hand-off, so stage there has no"
        " thread. raw is the same HTTP download into the private area and nothing else: the"
        " floor of every stage figure (writing the file bounds it on /dev/shm's 4 KiB pages;"
        " far less on the worker's own tmpfs with large pages)."
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        if sys.argv[2] == "stage":
            _stage_worker(*sys.argv[3:10])
        elif sys.argv[2] == "baseline":
            import confide.crypto  # noqa: F401

            print(json.dumps({"seconds": 0.0}))
        else:
            _worker(*sys.argv[2:9])
    else:
        main()
