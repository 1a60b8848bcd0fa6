"""teaclave-file-128 (Intel SGX Protected FS): layout, round trips, tampering."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from confide.crypto import (
    CryptoError,
    IntegrityError,
    compute_cmac,
    decrypt_stream,
    encrypt_stream,
    new_decryptor,
)

from .conftest import PFS_FIXTURES, NonSeekable

# every test on both paths: the C extension and the pure-Python one (conftest.pfs_path)
pytestmark = pytest.mark.usefixtures("pfs_path")

KEY = bytes.fromhex("3fc3fad0fc7fcb1bf7a8474d1b2ffef0")  # README §C output key
NAME = "output.enc"
NODE = 4096
# 34 MHT nodes: MHT 33 is a grandchild of the root (parent MHT 1), so the tree
# has three levels and the reader must re-fetch an evicted parent.
THREE_LEVELS = 3072 + NODE * 96 * 34 + 100


def _enc(data: bytes, name: str = NAME) -> tuple[bytes, bytes]:
    out = io.BytesIO()
    cmac = encrypt_stream("teaclave-file-128", KEY, b"", io.BytesIO(data), out, file_name=name)
    return out.getvalue(), cmac


@pytest.fixture(autouse=True, params=["pull", "push"])
def reader(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every ``_dec`` through the seeking reader (decrypt_stream) and the push one
    (new_decryptor: file order, as a download arrives)."""
    global _READER
    _READER = str(request.param)
    yield
    _READER = "pull"


_READER = "pull"


def _dec(blob: bytes, name: str = NAME, expected: bytes | None = None) -> bytes:
    out = io.BytesIO()
    if _READER == "pull":
        decrypt_stream(
            "teaclave-file-128", KEY, b"", io.BytesIO(blob), out, file_name=name,
            expected_cmac=expected,
        )  # fmt: skip
        return out.getvalue()
    dec = new_decryptor(
        "teaclave-file-128", KEY, b"", out, expected_cmac=expected, file_name=name
    )
    view = memoryview(blob)
    step = 0
    while view:  # uneven pieces, lent buffers: as recv_into fills them
        step = step % 7 + 1
        region = dec.get_buffer()
        k = min(len(region), len(view), step * 13_001)
        region[:k] = view[:k]
        dec.buffer_updated(k)
        view = view[k:]
    assert dec.finish() == blob[0x50:0x60]
    return out.getvalue()


def _expected_nodes(size: int) -> int:
    if size <= 3072:
        return 1
    n = (size - 3072 + NODE - 1) // NODE  # data nodes
    return 1 + n + (n - 1) // 96 + 1  # metadata + data + MHT nodes


@pytest.mark.parametrize(
    "size", [0, 1, 3072, 3073, 400_000, 5_000_000, 3072 + NODE * 96, 3072 + NODE * 96 + 1]
)
def test_round_trip_and_node_layout(size: int) -> None:
    data = os.urandom(size)
    blob, cmac = _enc(data)
    assert len(blob) == _expected_nodes(size) * NODE
    assert blob[0x50:0x60] == cmac
    assert _dec(blob, expected=cmac) == data
    assert compute_cmac("teaclave-file-128", io.BytesIO(blob)) == cmac


def test_round_trip_three_level_merkle_tree() -> None:
    data = os.urandom(THREE_LEVELS)
    blob, cmac = _enc(data)
    assert len(blob) == _expected_nodes(THREE_LEVELS) * NODE
    assert _dec(blob, expected=cmac) == data


def test_written_header_matches_teaclave_fixture_layout(vectors: Path) -> None:
    fixture = (vectors / "teaclave" / "functions" / PFS_FIXTURES[0].enc).read_bytes()
    blob, _ = _enc(os.urandom(5_000_000))
    # everything but key_id [0x10, 0x30) and gmac [0x50, 0x60) is fixed
    assert blob[:0x10] == fixture[:0x10]
    assert blob[0x30:0x50] == fixture[0x30:0x50]
    assert blob[3468:NODE] == bytes(NODE - 3468) == fixture[3468:NODE]


def test_each_write_uses_fresh_keys() -> None:
    data = os.urandom(10_000)
    a, ca = _enc(data)
    b, cb = _enc(data)
    assert ca != cb and a[0x10:0x30] != b[0x10:0x30]
    assert a[2 * NODE :] != b[2 * NODE :]  # data nodes under fresh node keys


def _positions(blob: bytes) -> dict[str, tuple[int, str]]:
    """Where to flip a byte, and the check that must catch it."""
    sealing = "non-zero sealing fields"
    meta = "metadata node does not verify"
    return {
        "file_id": (0, "bad file id"),
        "major_version": (8, "unsupported version"),
        "minor_version": (9, "unsupported version"),
        "encrypt_flags": (10, "encrypt flags"),
        "update_flag": (11, "update flag"),
        "key_policy": (12, sealing),
        "isv_svn": (14, sealing),
        "key_id": (0x10 + 7, meta),
        "cpu_svn": (0x30, sealing),
        "attribute_mask": (0x40 + 15, sealing),
        "gmac": (0x50 + 3, meta),
        "metadata name": (96, meta),
        "metadata size": (96 + 260, meta),
        "metadata data": (96 + 300 + 3000, meta),
        "metadata padding": (3468, "non-zero padding"),
        "metadata last byte": (NODE - 1, "non-zero padding"),
        "root MHT first": (NODE, "MHT node 0 does not verify"),
        "root MHT child entry": (NODE + 3072 + 20, "MHT node 0 does not verify"),
        "data node 0": (2 * NODE + 5, "data node 0 does not verify"),
        "data node 95 last byte": (98 * NODE - 1, "data node 95 does not verify"),
        "MHT node 1": (98 * NODE + 77, "MHT node 1 does not verify"),
        "MHT node 33": ((1 + 97 * 33) * NODE + 4000, "MHT node 33 does not verify"),
        "data node in grandchild": ((1 + 97 * 33 + 5) * NODE, "data node 3172 does not verify"),
        "last data node padding": (len(blob) - 1, "data node 3264 does not verify"),
    }


@pytest.fixture(scope="module")
def three_level() -> tuple[bytes, bytes]:
    return _enc(os.urandom(THREE_LEVELS))


@pytest.mark.parametrize("where", list(_positions(bytes(THREE_LEVELS * 2))))
def test_rejects_flipped_byte(three_level: tuple[bytes, bytes], where: str) -> None:
    blob, _ = three_level
    pos, check = _positions(blob)[where]
    bad = bytearray(blob)
    bad[pos] ^= 0x01
    with pytest.raises(IntegrityError, match=check):
        _dec(bytes(bad))


def test_rejects_wrong_key_and_wrong_name() -> None:
    blob, _ = _enc(b"hello")
    with pytest.raises(IntegrityError, match="metadata node does not verify"):
        decrypt_stream(
            "teaclave-file-128", bytes(16), b"", io.BytesIO(blob), io.BytesIO(), file_name=NAME
        )
    with pytest.raises(IntegrityError, match="embedded file name"):
        _dec(blob, name="other.enc")


def test_rejects_swapped_data_nodes() -> None:
    blob, _ = _enc(os.urandom(3072 + 3 * NODE))
    bad = (
        blob[: 2 * NODE] + blob[3 * NODE : 4 * NODE] + blob[2 * NODE : 3 * NODE] + blob[4 * NODE :]
    )
    with pytest.raises(IntegrityError, match="data node 0 does not verify"):
        _dec(bad)


@pytest.mark.parametrize("cut", ["drop last node", "append node", "partial node", "header only"])
def test_rejects_truncated_or_extended_file(cut: str) -> None:
    blob, _ = _enc(os.urandom(3072 + 5 * NODE))
    bad = {
        "drop last node": blob[:-NODE],
        "append node": blob + bytes(NODE),
        "partial node": blob[:-1],
        "header only": blob[:96],
    }[cut]
    with pytest.raises(IntegrityError):
        _dec(bad)


def test_rejects_rollback_to_an_older_version_by_cmac() -> None:
    old, _ = _enc(b"balance: 100")
    new, new_cmac = _enc(b"balance: 999")
    assert _dec(new, expected=new_cmac) == b"balance: 999"
    with pytest.raises(IntegrityError, match="expected cmac"):
        _dec(old, expected=new_cmac)


def test_rejects_name_mismatch_even_when_copied_under_another_name() -> None:
    # Renaming a protected file (e.g. swapping two inputs) must not go unnoticed.
    a, _ = _enc(b"alice", name="a.enc")
    with pytest.raises(IntegrityError, match=r"'a\.enc'"):
        _dec(a, name="b.enc")


@pytest.mark.parametrize("name", [None, "", "a/b.enc", "x\x00y", "n" * 259])
def test_writer_refuses_bad_file_names(name: str | None) -> None:
    with pytest.raises(CryptoError, match=r"file.name"):
        encrypt_stream(
            "teaclave-file-128", KEY, b"", io.BytesIO(b"x"), io.BytesIO(), file_name=name
        )


def test_accepts_longest_file_name() -> None:
    name = "n" * 258
    blob, _ = _enc(b"x", name=name)
    assert _dec(blob, name=name) == b"x"


def test_reader_requires_file_name() -> None:
    blob, _ = _enc(b"x")
    with pytest.raises(CryptoError, match="needs file_name"):
        decrypt_stream("teaclave-file-128", KEY, b"", io.BytesIO(blob), io.BytesIO())


def test_requires_seekable_streams() -> None:
    with pytest.raises(CryptoError, match="seekable destination"):
        encrypt_stream(
            "teaclave-file-128",
            KEY,
            b"",
            io.BytesIO(b"x"),
            cast(BinaryIO, NonSeekable()),
            file_name=NAME,
        )
    blob, _ = _enc(b"x")
    with pytest.raises(CryptoError, match="seekable source"):
        decrypt_stream(
            "teaclave-file-128",
            KEY,
            b"",
            cast(BinaryIO, NonSeekable(blob)),
            io.BytesIO(),
            file_name=NAME,
        )


def test_progress_covers_whole_file() -> None:
    data = os.urandom(400_000)
    seen: list[int] = []
    out = io.BytesIO()
    encrypt_stream(
        "teaclave-file-128", KEY, b"", io.BytesIO(data), out, file_name=NAME, progress=seen.append
    )
    assert sum(seen) == len(data)
    seen.clear()
    decrypt_stream(
        "teaclave-file-128",
        KEY,
        b"",
        io.BytesIO(out.getvalue()),
        io.BytesIO(),
        file_name=NAME,
        progress=seen.append,
    )
    assert sum(seen) == len(out.getvalue())


def test_on_disk_round_trip(tmp_private: Path) -> None:
    data = os.urandom(100_000)
    path = tmp_private / NAME
    with open(path, "wb") as dst:
        cmac = encrypt_stream(
            "teaclave-file-128", KEY, b"", io.BytesIO(data), dst, file_name=path.name
        )
    out = io.BytesIO()
    with open(path, "rb") as src:
        decrypt_stream(
            "teaclave-file-128", KEY, b"", src, out, file_name=path.name, expected_cmac=cmac
        )
    assert out.getvalue() == data
