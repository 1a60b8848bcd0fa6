"""Single-pass staging: download, verify and decrypt at once; nothing unverified survives.

The real ``FileAgent`` fetches from a scripted server (``_scripted``), so the
bytes the ``Stager`` sees are exactly those on the wire: tampered, truncated,
cut mid-body, or valid but not the registered file.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _scripted import reply, scripted
from test_file_agent_http import LIMITS, make_agent

from confide.crypto import encrypt_stream
from confide.crypto._writer import THREAD_NAME
from confide.execution import Stager, _staging
from confide.execution._area import AreaBudget, MeteredFile
from confide.execution._staging import TRANSFER_FAILED
from confide.executors import CapExceeded, CorruptedInput, FunctionError
from confide.staged import StagedFile

KEYS = {
    "aes-gcm-128": (bytes(range(16)), bytes(range(12))),
    "aes-gcm-256": (bytes(range(32)), bytes(range(12))),
    "confide-stream-256": (bytes(range(32)), b""),
    "teaclave-file-128": (bytes(range(16)), b""),
}
PUSHED = ["aes-gcm-128", "aes-gcm-256", "confide-stream-256"]
REASON = {
    "aes-gcm-128": 'AesGcm128 File, invalid tag: "',
    "aes-gcm-256": 'AesGcm256 File, invalid tag: "',
    "confide-stream-256": 'Corrupted input file: "',
}
PLAIN = os.urandom(3 * (1 << 20) + 1000)  # several segments / receive buffers


def _encrypt(schema: str, plain: bytes = PLAIN) -> tuple[bytes, bytes]:
    key, iv = KEYS[schema]
    out = io.BytesIO()
    cmac = encrypt_stream(schema, key, iv, io.BytesIO(plain), out, file_name="in.enc")
    return out.getvalue(), cmac


def _spec(schema: str, url: str, cmac: bytes) -> StagedFile:
    key, iv = KEYS[schema]
    return StagedFile(name="in", url=url + "/in.enc", schema=schema, key=key, iv=iv, cmac=cmac)


@pytest.fixture
def area(tmp_path: Path) -> Iterator[Path]:
    work = tmp_path / "work"
    work.mkdir(mode=0o700)
    yield work


def _stage(spec: StagedFile, area: Path) -> Path:
    Stager(make_agent(), LIMITS).fetch_decrypted(spec, area / "plain")
    return area / "plain"


@pytest.mark.parametrize("schema", PUSHED)
def test_stages_plaintext_in_one_pass_without_a_ciphertext_copy(schema: str, area: Path) -> None:
    blob, cmac = _encrypt(schema)
    with scripted(lambda _: [reply(blob)]) as srv:
        plain = _stage(_spec(schema, srv.url, cmac), area)
    assert plain.read_bytes() == PLAIN
    assert oct(plain.stat().st_mode & 0o777) == "0o600"
    assert os.listdir(area) == ["plain"]  # no ciphertext file next to it


@pytest.mark.parametrize("schema", PUSHED)
@pytest.mark.parametrize("where", [0, 60, (1 << 20) + 5, -17, -1])
def test_tampered_byte_fails_and_leaves_no_plaintext(schema: str, where: int, area: Path) -> None:
    blob, cmac = _encrypt(schema)
    bad = bytearray(blob)
    bad[where] ^= 0x01
    with scripted(lambda _: [reply(bytes(bad))]) as srv:
        with pytest.raises(FunctionError) as info:
            _stage(_spec(schema, srv.url, cmac), area)
    assert info.value.reason == f'{REASON[schema]}{area / "plain"}"'
    assert os.listdir(area) == []


@pytest.mark.parametrize("schema", PUSHED)
def test_valid_file_with_another_registered_cmac_is_refused(schema: str, area: Path) -> None:
    blob, cmac = _encrypt(schema)
    wrong = bytes(b ^ 0xFF for b in cmac)
    with scripted(lambda _: [reply(blob)]) as srv:
        with pytest.raises(FunctionError, match=REASON[schema][:-1]):
            _stage(_spec(schema, srv.url, wrong), area)
    assert os.listdir(area) == []


@pytest.mark.parametrize("schema", PUSHED)
@pytest.mark.parametrize("cut", [1, 16, 1 << 20])
def test_truncated_file_fails_and_leaves_no_plaintext(schema: str, cut: int, area: Path) -> None:
    blob, cmac = _encrypt(schema)
    with scripted(lambda _: [reply(blob[:-cut])]) as srv:  # a consistent, shorter file
        with pytest.raises(FunctionError, match=REASON[schema][:-1]):
            _stage(_spec(schema, srv.url, cmac), area)
    assert os.listdir(area) == []


@pytest.mark.parametrize("schema", ["aes-gcm-128", "aes-gcm-256"])
def test_aes_gcm_shorter_than_a_tag_reports_its_length(schema: str, area: Path) -> None:
    with scripted(lambda _: [reply(b"x" * 15)]) as srv:
        with pytest.raises(FunctionError) as info:
            _stage(_spec(schema, srv.url, bytes(16)), area)
    label = "AesGcm128" if schema.endswith("128") else "AesGcm256"
    assert info.value.reason == f"{label} File, invalid length: 15"
    assert os.listdir(area) == []


@pytest.mark.parametrize("schema", PUSHED)
def test_connection_dropped_mid_body_every_time_is_a_transfer_failure(
    schema: str, area: Path
) -> None:
    blob, cmac = _encrypt(schema)
    with scripted(lambda _: [reply(blob)[: 2 << 20], None]) as srv:
        with pytest.raises(FunctionError) as info:
            _stage(_spec(schema, srv.url, cmac), area)
    assert info.value.reason == TRANSFER_FAILED
    assert len(srv.hits) == LIMITS.file_max_attempts
    assert os.listdir(area) == []


@pytest.mark.parametrize("schema", PUSHED)
def test_retry_after_a_dropped_connection_restarts_the_decryption(
    schema: str, area: Path
) -> None:
    blob, cmac = _encrypt(schema)

    def script(hit: int) -> list[bytes | None]:
        return [reply(blob)[: (2 << 20) + 7], None] if hit == 1 else [reply(blob)]

    with scripted(script) as srv:
        plain = _stage(_spec(schema, srv.url, cmac), area)
    assert plain.read_bytes() == PLAIN  # not the first attempt's prefix twice
    assert len(srv.hits) == 2


@pytest.mark.parametrize("schema", PUSHED)
def test_body_over_the_download_cap_fails_and_leaves_no_plaintext(
    schema: str, area: Path
) -> None:
    blob, cmac = _encrypt(schema)
    limits = type(LIMITS)(**{**LIMITS.__dict__, "max_download_bytes": len(blob) - 1})
    with scripted(lambda _: [reply(blob, length=None), None]) as srv:
        stager = Stager(make_agent(limits=limits), limits)
        with pytest.raises(FunctionError) as info:
            stager.fetch_decrypted(_spec(schema, srv.url, cmac), area / "plain")
    assert info.value.reason == TRANSFER_FAILED
    assert os.listdir(area) == []


def test_stage_decrypts_teaclave_file_while_it_downloads_with_random_access(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_staging, "_private_root", lambda: tmp_path)
    blob, cmac = _encrypt("teaclave-file-128")  # 3 MiB: 8 MHT nodes, ~770 data nodes
    with scripted(lambda _: [reply(blob)]) as srv:
        stager = Stager(make_agent(), LIMITS)
        spec = _spec("teaclave-file-128", srv.url, cmac)
        with stager.stage("t", [spec], []) as staged:
            work = Path(staged._work)
            assert [p.split("-")[0] for p in os.listdir(work)] == ["plain"]  # no ciphertext
            with staged.open_input("in") as f:
                f.seek(2_000_000)
                assert f.read(5000) == PLAIN[2_000_000:2_005_000]
                f.seek(17)
                assert f.read(100) == PLAIN[17:117]
                f.seek(0)
                assert f.read() == PLAIN
        assert not work.exists()


@pytest.mark.parametrize(
    "tamper", ["data node", "MHT node", "metadata", "truncated", "another file's cmac"]
)
def test_corrupted_teaclave_input_fails_when_opened_not_when_staged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tamper: str
) -> None:
    # spec Q29: Teaclave checks a protected file when the function opens it, so a task
    # whose function never opens a corrupted input still runs. Its plaintext is gone at once.
    monkeypatch.setattr(_staging, "_private_root", lambda: tmp_path)
    blob, cmac = _encrypt("teaclave-file-128")
    bad = bytearray(blob)
    if tamper == "data node":
        bad[(2 + 400 + 4) * 4096 + 33] ^= 1
    elif tamper == "MHT node":
        bad[(1 + 97 * 3) * 4096 + 7] ^= 1
    elif tamper == "metadata":
        bad[200] ^= 1
    elif tamper == "truncated":
        del bad[-4096:]
    else:
        _, cmac = _encrypt("teaclave-file-128", b"another file")
    good, good_cmac = _encrypt("teaclave-file-128", b"rows\n" * 100)
    with scripted(lambda hit: [reply(bytes(bad) if hit == 1 else good)]) as srv:
        stager = Stager(make_agent(), LIMITS)
        spec = _spec("teaclave-file-128", srv.url, cmac)
        other = StagedFile(name="other", url=srv.url + "/in.enc", schema="teaclave-file-128",
                           key=spec.key, iv=b"", cmac=good_cmac)  # fmt: skip
        with stager.stage("t", [spec, other], []) as staged:
            work = Path(staged._work)
            assert len(os.listdir(work)) == 1  # the other input only: nothing partial kept
            with staged.open_input("other") as f:
                assert f.read() == b"rows\n" * 100
            with pytest.raises(CorruptedInput, match='Corrupted input file: "') as info:
                staged.open_input("in")
            assert info.value.name == "in"
            with pytest.raises(CorruptedInput):
                staged.open_input("in")  # and again on every open


def test_stage_removes_the_private_area_after_a_failed_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_staging, "_private_root", lambda: tmp_path)
    blob, cmac = _encrypt("aes-gcm-256")
    with scripted(lambda _: [reply(blob[:-1] + bytes([blob[-1] ^ 1]))]) as srv:
        stager = Stager(make_agent(), LIMITS)
        with pytest.raises(FunctionError, match="AesGcm256 File, invalid tag"):
            with stager.stage("t", [_spec("aes-gcm-256", srv.url, cmac)], []):
                pytest.fail("the function must not run")
    assert os.listdir(tmp_path) == [f"confide-worker-{os.getpid()}"]
    assert os.listdir(_staging.private_area(os.getpid())) == []


def test_sweep_removes_only_the_areas_of_dead_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_staging, "_private_root", lambda: tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for pid in (os.getpid(), dead.pid):
        (_staging.private_area(pid) / "task-x").mkdir(parents=True)
        (_staging.private_area(pid) / "task-x" / "plain-0").write_bytes(b"secret")
    (tmp_path / "confide-worker-notapid").mkdir()
    assert _staging.sweep_private_areas() == [dead.pid]
    assert sorted(os.listdir(tmp_path)) == [f"confide-worker-{os.getpid()}",
                                            "confide-worker-notapid"]
    _staging.remove_private_area(os.getpid())
    assert not _staging.private_area(os.getpid()).exists()


def _writer_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == THREAD_NAME]


def test_teaclave_retry_after_a_dropped_connection_restarts_the_decryption(area: Path) -> None:
    # 3 MiB is 8 groups: when the connection drops, the writer thread is mid-file; it
    # must be done with the plaintext before the retry cuts it and starts again.
    blob, cmac = _encrypt("teaclave-file-128")

    def script(hit: int) -> list[bytes | None]:
        return [reply(blob)[: (2 << 20) + 7], None] if hit == 1 else [reply(blob)]

    with scripted(script) as srv:
        fetched = Stager(make_agent(), LIMITS).fetch_decrypted_or_corrupt(
            _spec("teaclave-file-128", srv.url, cmac), area / "plain"
        )
    assert fetched.corrupted is None
    assert (area / "plain").read_bytes() == PLAIN
    assert len(srv.hits) == 2
    assert _writer_threads() == []


def test_teaclave_input_past_the_area_cap_stops_mid_file_and_leaves_nothing(area: Path) -> None:
    # the cap is met by a write on the writer thread: raised unchanged, plaintext removed
    blob, cmac = _encrypt("teaclave-file-128")
    with scripted(lambda _: [reply(blob)]) as srv:
        with pytest.raises(CapExceeded, match="private area"):
            Stager(make_agent(), LIMITS).fetch_decrypted_or_corrupt(
                _spec("teaclave-file-128", srv.url, cmac), area / "plain",
                area=AreaBudget(1 << 20),
            )  # fmt: skip
    assert os.listdir(area) == []
    assert _writer_threads() == []


@pytest.mark.parametrize("write_behind", [True, False])
def test_teaclave_writes_go_to_the_writer_thread_only_with_write_behind(
    area: Path, write_behind: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker turns write-behind off when its area is a tmpfs with large pages.
    from confide.crypto._pfs import crypto_releases_gil

    writers: set[str] = set()
    real_write = MeteredFile.write

    def write(self: MeteredFile, data: bytes | bytearray | memoryview) -> int:
        writers.add(threading.current_thread().name)
        return real_write(self, data)

    monkeypatch.setattr(MeteredFile, "write", write)
    blob, cmac = _encrypt("teaclave-file-128")  # 3 MiB: 8 groups
    with scripted(lambda _: [reply(blob)]) as srv:
        stager = Stager(make_agent(), LIMITS, write_behind=write_behind)
        fetched = stager.fetch_decrypted_or_corrupt(
            _spec("teaclave-file-128", srv.url, cmac), area / "plain", area=AreaBudget(8 << 20)
        )
    assert fetched.corrupted is None
    assert (area / "plain").read_bytes() == PLAIN
    caller = threading.current_thread().name
    threaded = write_behind and crypto_releases_gil()
    assert writers == ({caller, THREAD_NAME} if threaded else {caller})
    assert _writer_threads() == []
