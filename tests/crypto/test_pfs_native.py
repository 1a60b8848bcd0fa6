"""The optional C extension ``confide.crypto._pfs_native``: argument checks, tamper
reporting, and the same bytes as the pure-Python path."""

from __future__ import annotations

import io
import os
import random

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from confide.config import Limits
from confide.crypto import _pfs
from confide.crypto._pfs_layout import MD_DATA_LENGTH, NODE

native = pytest.importorskip(
    "confide.crypto._pfs_native", reason="not built (no C compiler or libgcrypt20-dev)"
)

ZERO_IV = bytes(12)


def _sealed(n: int) -> tuple[bytes, bytes, bytearray, bytearray]:
    keys, plain = os.urandom(16 * n), os.urandom(NODE * n)
    out, gmacs = bytearray(NODE * n), bytearray(16 * n)
    native.seal_nodes(keys, plain, out, gmacs)
    return keys, plain, out, gmacs


def _entries(keys: bytes, gmacs: bytes | bytearray) -> bytes:
    return b"".join(keys[i : i + 16] + gmacs[i : i + 16] for i in range(0, len(keys), 16))


def test_seal_matches_aesgcm_per_node() -> None:
    keys, plain, out, gmacs = _sealed(5)
    for i in range(5):
        ref = AESGCM(keys[16 * i : 16 * i + 16]).encrypt(ZERO_IV, plain[NODE * i :][:NODE], None)
        assert bytes(out[NODE * i : NODE * (i + 1)]) + bytes(gmacs[16 * i : 16 * i + 16]) == ref


def test_open_round_trips() -> None:
    keys, plain, out, gmacs = _sealed(7)
    back = bytearray(NODE * 7)
    assert native.open_nodes(_entries(keys, gmacs), out, back) == -1
    assert back == plain


@pytest.mark.parametrize("where", ["ciphertext", "gmac", "key"])
def test_open_names_the_first_tampered_node_and_zeroes_its_output(where: str) -> None:
    keys, _, out, gmacs = _sealed(6)
    entries = bytearray(_entries(keys, gmacs))
    if where == "ciphertext":
        out[NODE * 3 + 77] ^= 1
        out[NODE * 5] ^= 1  # a later bad node: the first one is reported
    elif where == "gmac":
        entries[32 * 3 + 16] ^= 0x80
    else:
        entries[32 * 3] ^= 1
    back = bytearray(b"\xaa" * (NODE * 6))
    assert native.open_nodes(bytes(entries), out, back) == 3
    assert not any(back[NODE * 3 : NODE * 4])
    assert back[NODE * 4 :] == b"\xaa" * (NODE * 2)  # nodes after the bad one are not touched


def test_zero_nodes_is_a_no_op() -> None:
    native.seal_nodes(b"", b"", bytearray(), bytearray())
    assert native.open_nodes(b"", b"", bytearray()) == -1


@pytest.mark.parametrize(
    ("keys", "plain", "out", "gmacs", "match"),
    [
        (15, NODE, NODE, 16, "keys length 15 is not a multiple of 16"),
        (16, NODE - 1, NODE, 16, "plain is 4095 bytes, expected 4096"),
        (16, NODE, NODE - 1, 16, "out is 4095 bytes, expected 4096"),
        (16, NODE, NODE + 1, 16, "out is 4097 bytes, expected 4096"),
        (16, NODE, NODE, 15, "gmacs is 15 bytes, expected 16"),
        (32, NODE, NODE, 16, "plain is 4096 bytes, expected 8192"),
    ],
)
def test_seal_rejects_wrong_lengths(keys: int, plain: int, out: int, gmacs: int,
                                    match: str) -> None:  # fmt: skip
    with pytest.raises(ValueError, match=match):
        native.seal_nodes(bytes(keys), bytes(plain), bytearray(out), bytearray(gmacs))


@pytest.mark.parametrize(
    ("entries", "ct", "out", "match"),
    [
        (31, NODE, NODE, "entries length 31 is not a multiple of 32"),
        (16, NODE, NODE, "entries length 16 is not a multiple of 32"),
        (32, NODE - 1, NODE, "ct is 4095 bytes, expected 4096"),
        (32, NODE, NODE - 1, "out is 4095 bytes, expected 4096"),
        (64, NODE, NODE, "ct is 4096 bytes, expected 8192"),
    ],
)
def test_open_rejects_wrong_lengths(entries: int, ct: int, out: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        native.open_nodes(bytes(entries), bytes(ct), bytearray(out))


def test_too_many_nodes_in_one_call_are_refused() -> None:
    n = native.MAX_NODES + 1
    with pytest.raises(ValueError, match=f"{n} nodes in one call, more than {native.MAX_NODES}"):
        native.seal_nodes(bytes(16 * n), bytes(NODE * n), bytearray(NODE * n), bytearray(16 * n))
    with pytest.raises(ValueError, match=f"{n} nodes in one call"):
        native.open_nodes(bytes(32 * n), bytes(NODE * n), bytearray(NODE * n))


def test_read_only_outputs_and_wrong_types_are_refused() -> None:
    with pytest.raises(BufferError, match="not writable"):
        native.seal_nodes(bytes(16), bytes(NODE), bytes(NODE), bytearray(16))  # out read-only
    with pytest.raises(BufferError, match="not writable"):
        native.open_nodes(bytes(32), bytes(NODE), bytes(NODE))
    with pytest.raises(TypeError, match="bytes-like"):
        native.open_nodes("k" * 32, bytes(NODE), bytearray(NODE))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes 3 arguments"):
        native.open_nodes(bytes(32), bytes(NODE))  # type: ignore[call-arg]


def test_partly_overlapping_buffers_are_refused_in_place_is_allowed() -> None:
    keys, plain = os.urandom(32), bytearray(os.urandom(NODE * 3))
    view = memoryview(plain)
    with pytest.raises(ValueError, match="plain and out overlap partially"):
        native.seal_nodes(keys, view[: 2 * NODE], view[NODE:], bytearray(32))
    expected = bytearray(2 * NODE)
    gmacs = bytearray(32)
    native.seal_nodes(keys, bytes(view[: 2 * NODE]), expected, gmacs)
    native.seal_nodes(keys, view[: 2 * NODE], view[: 2 * NODE], bytearray(32))  # in place
    assert view[: 2 * NODE] == expected


SIZES = [0, 1, MD_DATA_LENGTH, MD_DATA_LENGTH + 1, MD_DATA_LENGTH + NODE * 17 + 9,
         MD_DATA_LENGTH + NODE * 97]  # fmt: skip


@pytest.mark.parametrize("size", SIZES)
def test_native_and_pure_paths_write_identical_files(
    size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(size)

    def encrypt() -> tuple[bytes, bytes]:
        out = io.BytesIO()
        rnd = random.Random(size)  # the same master key and key id on both paths
        cmac = _pfs.encrypt(bytes(16), io.BytesIO(data), out, file_name="same.bin",
                            rng=rnd.randbytes, progress=None, limits=Limits())  # fmt: skip
        return out.getvalue(), cmac

    assert _pfs._native is not None
    fast = encrypt()
    monkeypatch.setattr(_pfs, "_native", None)
    assert encrypt() == fast


def test_in_place_seal_and_open_give_the_same_bytes() -> None:
    keys, plain, out, gmacs = _sealed(3)
    buf = bytearray(plain)
    native.seal_nodes(keys, buf, buf, bytearray(48))
    assert buf == out
    assert native.open_nodes(_entries(keys, gmacs), buf, buf) == -1
    assert buf == plain


class _OffByOneBit:
    """A batch backend whose ciphertext differs from AES-GCM's in one bit."""

    BACKEND = "broken"

    @staticmethod
    def seal_nodes(keys: bytes, plain: bytes, out: bytearray, gmacs: bytearray) -> None:
        native.seal_nodes(keys, plain, out, gmacs)
        out[100] ^= 1

    @staticmethod
    def open_nodes(entries: bytes, ct: bytes, out: bytearray) -> int:
        return int(native.open_nodes(entries, ct, out))


def test_a_backend_that_disagrees_with_cryptography_is_not_used() -> None:
    assert _pfs._agrees_with_cryptography(native)
    assert not _pfs._agrees_with_cryptography(_OffByOneBit())
