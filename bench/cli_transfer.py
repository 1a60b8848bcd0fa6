"""1 GiB through the CLI vs plain curl of the same ciphertext, to the same blob store, one run.

Starts ``confide serve`` (sim TEE) in a temporary directory, logs a data owner in
through the installed ``confide`` and measures, each as a separate process whose
peak RSS is read with ``wait4``:

* ``confide file upload BIG``  (encrypt while uploading, register) vs
  ``curl -T BIG.enc PUT_URL`` (the same schema's ciphertext, already made);
* ``confide file download ID -o OUT`` (fetch, verify, decrypt to a file) vs
  ``curl -o OUT.enc GET_URL``.

Acceptance (issue 14): CLI peak RSS <= 100 MiB, CLI throughput >= 0.5x curl's.
Run: ``.venv/bin/python bench/cli_transfer.py [--size-mib 1024]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CONFIDE = Path(sys.executable).with_name("confide")
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Run:
    label: str
    seconds: float
    rss_mib: float
    nbytes: int

    @property
    def mb_s(self) -> float:
        return self.nbytes / MiB / self.seconds


def measured(label: str, args: list[str], nbytes: int, env: dict[str, str],
             stdin: bytes | None = None, cwd: Path | None = None) -> tuple[Run, str]:
    """Run ``args`` once; wall time and the child's own peak RSS (wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    if stdin is not None:
        proc.stdin.write(stdin)
    proc.stdin.close()
    out = proc.stdout.read()
    errors = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed ({proc.returncode}): {errors.decode()[-2000:]}")
    return Run(label, seconds, usage.ru_maxrss / 1024, nbytes), out.decode()


def start_server(work: Path) -> tuple[subprocess.Popen[bytes], dict[str, int], Path]:
    data = work / "confide-data"
    ports = {k: free_port() for k in ("authentication", "frontend", "scheduler", "blobs",
                                      "keys")}
    log = open(work / "server.log", "wb")
    proc = subprocess.Popen(
        [str(CONFIDE), "serve", "--data-dir", str(data), "--workers", "1",
         "--authentication-port", str(ports["authentication"]),
         "--frontend-port", str(ports["frontend"]), "--scheduler-port", str(ports["scheduler"]),
         "--blob-port", str(ports["blobs"]), "--key-service-port", str(ports["keys"])],
        stdout=log, stderr=subprocess.STDOUT, cwd=work)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit((work / "server.log").read_text()[-3000:])
        if (data / "api-cert.pem").exists():
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", ports["frontend"])) == 0:
                    return proc, ports, data
        time.sleep(0.1)
    raise SystemExit("server did not start")


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        for i in range(size // MiB):
            chunk = block[i % 251:] + block[: i % 251]  # cheap, not all identical
            f.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def _default_dir() -> Path | None:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--dir", type=Path, default=_default_dir(),
                        help="Where the files (and the blob store) go. Default /dev/shm: on "
                             "this VM the disk writes ~120 MB/s and would be all both sides "
                             "measure.")
    opts = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl is needed for the baseline")
    size = opts.size_mib * MiB
    work = Path(tempfile.mkdtemp(prefix="confide-bench-", dir=opts.dir))
    server, ports, data = start_server(work)
    try:
        env = {**os.environ, "CONFIDE_HOME": str(work / "home"), "CONFIDE_HOST": "127.0.0.1",
               "CONFIDE_AUTHENTICATION_PORT": str(ports["authentication"]),
               "CONFIDE_FRONTEND_PORT": str(ports["frontend"]), "CONFIDE_PROFILE": "bench"}
        cli = [str(CONFIDE)]
        for args, stdin in (
            (["user", "login", "admin", "-d", str(data), "--password-stdin"], b"teaclave\n"),
            (["user", "register", "owner", "DataOwner", "--attribute", "org",
              "--password-stdin"], b"pw-owner\n"),
            (["user", "login", "owner", "-d", str(data), "--password-stdin"], b"pw-owner\n"),
        ):
            measured("setup", cli + args, 0, env, stdin)
        plain = work / "big.bin"
        print(f"making {opts.size_mib} MiB of plaintext in {work} ...", file=sys.stderr)
        want = make_file(plain, size)
        idle, _ = measured("confide task list (startup + attestation, no transfer)",
                           [*cli, "task", "list"], 0, env)

        up, out = measured("confide file upload", [
            *cli, "file", "upload", str(plain), "--json", "--no-progress"], size, env)
        uploaded = json.loads(out)
        # The same ciphertext size for curl: encrypt the file with the same schema here.
        key = work / "key"
        key.write_text(os.urandom(32).hex())
        sealed = work / "big.enc"
        measured("confide encrypt", [*cli, "encrypt", "--key-file", str(key), "-a",
                                     uploaded["schema"], "-i", str(plain), "-o", str(sealed)],
                 size, env)
        _urls, out = measured("blob urls", [*cli, "file", "blob-urls", "curl.enc", "--json"],
                              0, env)
        blob = json.loads(out)
        csize = sealed.stat().st_size
        curl_up, _ = measured("curl -T (PUT the ciphertext)", [
            "curl", "-sS", "--fail", "-T", str(sealed), "-H", "Content-Type: application/x-binary",
            blob["put_url"]], csize, env)

        out_plain = work / "big.out"
        down, _ = measured("confide file download", [
            *cli, "file", "download", uploaded["data_id"], "-o", str(out_plain),
            "--no-progress"], size, env)
        curl_down, _ = measured("curl -o (GET the ciphertext)", [
            "curl", "-sS", "--fail", "-o", str(work / "curl.out"), blob["get_url"]], csize, env)
        if file_sha256(out_plain) != want:
            raise SystemExit("the downloaded plaintext differs from the uploaded file")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{opts.size_mib} MiB, schema {uploaded['schema']}, loopback blob store "
          f"({os.cpu_count()} CPUs)\n")
    print(f"{'':42} {'seconds':>8} {'MiB/s':>8} {'peak RSS MiB':>13} {'vs curl':>8}")
    for run, base in ((idle, None), (up, curl_up), (curl_up, None), (down, curl_down),
                      (curl_down, None)):
        ratio = f"{run.mb_s / base.mb_s:.2f}x" if base is not None else ""
        rate = f"{run.mb_s:8.0f}" if run.nbytes else f"{'':>8}"
        print(f"{run.label:42} {run.seconds:8.2f} {rate} {run.rss_mib:13.1f} {ratio:>8}")
    ok = all(r.rss_mib <= 100 for r in (up, down)) and up.mb_s >= 0.5 * curl_up.mb_s \
        and down.mb_s >= 0.5 * curl_down.mb_s
    print(f"\nacceptance (RSS <= 100 MiB, >= 0.5x curl): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
