"""teaclave-file-128 read in file order as it arrives (``new_decryptor``, what staging
uses); the seeking reader's checks are run on it too in test_protected_fs.py."""

from __future__ import annotations

import gc
import io
import os
import time
from pathlib import Path

import pytest

from confide.config import Limits
from confide.crypto import (
    CryptoError,
    CryptoLimitError,
    IntegrityError,
    _pfs,
    encrypt_stream,
    new_decryptor,
)
from confide.crypto._pfs_layout import MD_DATA_LENGTH, NODE, data_physical

from .conftest import PFS_FIXTURES, PfsFixture, writer_threads

pytestmark = pytest.mark.usefixtures("pfs_path")

KEY = bytes(range(16))
NAME = "pushed.bin"


def _enc(data: bytes) -> tuple[bytes, bytes]:
    out = io.BytesIO()
    cmac = encrypt_stream("teaclave-file-128", KEY, b"", io.BytesIO(data), out, file_name=NAME)
    return out.getvalue(), cmac


@pytest.mark.parametrize("fx", PFS_FIXTURES, ids=lambda f: f.name)
def test_teaclave_fixture_decrypts_as_it_arrives(vectors: Path, fx: PfsFixture) -> None:
    base = vectors / "teaclave" / "functions"
    out = io.BytesIO()
    dec = new_decryptor("teaclave-file-128", bytes(16), b"", out,
                        expected_cmac=bytes.fromhex(fx.cmac), file_name=fx.name)  # fmt: skip
    with open(base / fx.enc, "rb") as src:
        dec.drain(src)
    assert dec.finish().hex() == fx.cmac
    assert out.getvalue() == (base / fx.plain).read_bytes()


def test_a_group_is_written_only_after_all_of_its_nodes_verify() -> None:
    data = os.urandom(MD_DATA_LENGTH + NODE * (96 + 10))
    blob, cmac = _enc(data)
    bad = bytearray(blob)
    bad[data_physical(96 + 4) * NODE + 9] ^= 1  # the second group's fifth data node
    out = io.BytesIO()
    dec = new_decryptor("teaclave-file-128", KEY, b"", out, expected_cmac=cmac, file_name=NAME)
    with pytest.raises(IntegrityError, match="data node 100 does not verify"):
        dec.write(bytes(bad))
    assert out.getvalue() == data[: MD_DATA_LENGTH + 96 * NODE]


def test_buffers_stay_within_one_group() -> None:
    blob, cmac = _enc(os.urandom(MD_DATA_LENGTH + NODE * 300))
    dec = new_decryptor("teaclave-file-128", KEY, b"", io.BytesIO(), file_name=NAME)
    view = memoryview(blob)
    while view:
        region = dec.get_buffer()
        assert 0 < len(region) <= 97 * NODE
        k = min(len(region), len(view))
        region[:k] = view[:k]
        dec.buffer_updated(k)
        view = view[k:]
    assert dec.finish() == cmac


def test_rejects_bytes_past_the_end_at_once() -> None:
    blob, _ = _enc(os.urandom(MD_DATA_LENGTH + NODE * 3))
    dec = new_decryptor("teaclave-file-128", KEY, b"", io.BytesIO(), file_name=NAME)
    dec.write(blob)
    with pytest.raises(IntegrityError, match="longer than its size field"):
        dec.write(b"\x00")


# the file has 5 nodes: metadata, MHT 0, 3 data nodes; the last cut leaves 96 bytes
@pytest.mark.parametrize("cut", [1, NODE, NODE * 4, NODE * 5 - 96])
def test_rejects_truncation_at_finish(cut: int) -> None:
    blob, _ = _enc(os.urandom(MD_DATA_LENGTH + NODE * 3))
    dec = new_decryptor("teaclave-file-128", KEY, b"", io.BytesIO(), file_name=NAME)
    dec.write(blob[: len(blob) - cut])
    with pytest.raises(IntegrityError, match=r"truncated|not a positive multiple"):
        dec.finish()


def test_rejects_empty_input() -> None:
    dec = new_decryptor("teaclave-file-128", KEY, b"", io.BytesIO(), file_name=NAME)
    with pytest.raises(IntegrityError, match="shorter than its header"):
        dec.finish()


def test_rejects_a_different_cmac_before_any_plaintext() -> None:
    blob, _ = _enc(b"balance: 100")
    out = io.BytesIO()
    dec = new_decryptor("teaclave-file-128", KEY, b"", out, expected_cmac=bytes(16),
                        file_name=NAME)  # fmt: skip
    with pytest.raises(IntegrityError, match="expected cmac"):
        dec.write(blob)
    assert out.getvalue() == b""


def test_needs_the_file_name() -> None:
    with pytest.raises(CryptoError, match="needs file_name"):
        new_decryptor("teaclave-file-128", KEY, b"", io.BytesIO())


def test_input_over_the_encrypted_file_cap_is_refused() -> None:
    dec = new_decryptor("teaclave-file-128", KEY, b"", io.BytesIO(), file_name=NAME,
                        limits=Limits(max_encrypted_file_bytes=NODE - 1))  # fmt: skip
    with pytest.raises(CryptoLimitError, match=f"exceeds {NODE - 1} bytes"):
        dec.write(bytes(NODE))


def test_size_field_over_the_plaintext_cap_is_refused() -> None:
    blob, _ = _enc(os.urandom(MD_DATA_LENGTH + NODE))
    dec = new_decryptor("teaclave-file-128", KEY, b"", io.BytesIO(), file_name=NAME,
                        limits=Limits(max_teaclave_file_bytes=MD_DATA_LENGTH))  # fmt: skip
    with pytest.raises(CryptoLimitError, match="plaintext exceeds"):
        dec.write(blob)



def _wait_for_no_writer_thread() -> None:
    deadline = time.monotonic() + 5
    while writer_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer_threads() == []


def test_groups_after_the_first_are_written_by_the_writer_thread_in_order(
    tmp_path: Path,
) -> None:
    data = os.urandom(MD_DATA_LENGTH + NODE * 96 * 5 + 123)  # 6 groups
    blob, cmac = _enc(data)
    out = (tmp_path / "plain").open("w+b")  # an OS file: its writes go to the writer thread
    dec = new_decryptor("teaclave-file-128", KEY, b"", out, expected_cmac=cmac, file_name=NAME)
    dec.write(blob[: len(blob) // 2])
    # mid-file the writer runs, on the C extension's path (the pure path holds the GIL: no thread)
    assert bool(writer_threads()) == _pfs.crypto_releases_gil()
    dec.write(blob[len(blob) // 2 :])
    assert writer_threads() == []  # done with the last group: writes finished, thread gone
    assert dec.finish() == cmac
    out.close()
    assert (tmp_path / "plain").read_bytes() == data


def test_close_mid_file_stops_the_writer(tmp_path: Path) -> None:
    data = os.urandom(MD_DATA_LENGTH + NODE * 96 * 5)
    blob, cmac = _enc(data)
    out = (tmp_path / "plain").open("w+b")
    dec = new_decryptor("teaclave-file-128", KEY, b"", out, expected_cmac=cmac, file_name=NAME)
    dec.write(blob[:-NODE])
    assert bool(writer_threads()) == _pfs.crypto_releases_gil()
    dec.close()
    assert writer_threads() == []
    out.flush()
    written = (tmp_path / "plain").read_bytes()
    assert data.startswith(written) and len(written) < len(data)
    with pytest.raises(IntegrityError, match="truncated"):
        dec.finish()


def test_a_dropped_decryptor_leaves_no_writer_thread(tmp_path: Path) -> None:
    blob, cmac = _enc(os.urandom(MD_DATA_LENGTH + NODE * 96 * 4))
    out = (tmp_path / "plain").open("w+b")
    dec = new_decryptor("teaclave-file-128", KEY, b"", out, expected_cmac=cmac, file_name=NAME)
    dec.write(blob[:-NODE])  # all but the last node: the writer is running
    assert bool(writer_threads()) == _pfs.crypto_releases_gil()
    del dec
    gc.collect()
    _wait_for_no_writer_thread()
    out.close()
