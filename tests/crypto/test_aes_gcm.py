"""aes-gcm-128/256: streaming round trips and tampering (single tag per file)."""

from __future__ import annotations

import io
import os
from typing import BinaryIO, cast

import pytest

from confide.crypto import CryptoError, IntegrityError, compute_cmac, decrypt_stream, encrypt_stream

from .conftest import NonSeekable

KEY = {"aes-gcm-128": bytes(range(16)), "aes-gcm-256": bytes(range(32))}
IV = bytes(range(100, 112))
MiB = 1 << 20


def _enc(schema: str, data: bytes) -> tuple[bytes, bytes]:
    out = io.BytesIO()
    cmac = encrypt_stream(schema, KEY[schema], IV, io.BytesIO(data), out)
    return out.getvalue(), cmac


@pytest.mark.parametrize("schema", sorted(KEY))
@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, MiB - 1, MiB, MiB + 1, 2 * MiB + 16, 3_000_001])
def test_round_trip_across_segment_boundaries(schema: str, size: int) -> None:
    data = os.urandom(size)
    blob, cmac = _enc(schema, data)
    assert len(blob) == size + 16
    assert blob[-16:] == cmac
    out = io.BytesIO()
    assert (
        decrypt_stream(schema, KEY[schema], IV, io.BytesIO(blob), out, expected_cmac=cmac) == cmac
    )
    assert out.getvalue() == data
    assert compute_cmac(schema, io.BytesIO(blob)) == cmac


def test_streams_over_non_seekable_files() -> None:
    data = os.urandom(MiB + 100)
    dst = NonSeekable()
    cmac = encrypt_stream(
        "aes-gcm-128",
        KEY["aes-gcm-128"],
        IV,
        cast(BinaryIO, NonSeekable(data)),
        cast(BinaryIO, dst),
    )
    out = NonSeekable()
    decrypt_stream(
        "aes-gcm-128",
        KEY["aes-gcm-128"],
        IV,
        cast(BinaryIO, NonSeekable(dst.getvalue())),
        cast(BinaryIO, out),
    )
    assert out.getvalue() == data
    assert compute_cmac("aes-gcm-128", cast(BinaryIO, NonSeekable(dst.getvalue()))) == cmac


def test_reports_progress_in_bytes_consumed() -> None:
    data = os.urandom(2 * MiB + 5)
    seen: list[int] = []
    out = io.BytesIO()
    encrypt_stream(
        "aes-gcm-128", KEY["aes-gcm-128"], IV, io.BytesIO(data), out, progress=seen.append
    )
    assert sum(seen) == len(data) and len(seen) >= 3
    seen.clear()
    decrypt_stream(
        "aes-gcm-128",
        KEY["aes-gcm-128"],
        IV,
        io.BytesIO(out.getvalue()),
        io.BytesIO(),
        progress=seen.append,
    )
    assert sum(seen) == len(out.getvalue())


@pytest.mark.parametrize("schema", sorted(KEY))
def test_rejects_any_flipped_byte(schema: str) -> None:
    blob, _ = _enc(schema, os.urandom(MiB + 300))
    for pos in (
        0,
        1,
        4096,
        MiB - 1,
        MiB,
        MiB + 15,
        MiB + 16,
        len(blob) - 17,
        len(blob) - 16,
        len(blob) - 1,
    ):
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        with pytest.raises(IntegrityError, match="tag does not verify"):
            decrypt_stream(schema, KEY[schema], IV, io.BytesIO(bytes(bad)), io.BytesIO())


def test_rejects_wrong_key_and_wrong_iv() -> None:
    blob, _ = _enc("aes-gcm-256", b"secret data")
    with pytest.raises(IntegrityError):
        decrypt_stream("aes-gcm-256", bytes(32), IV, io.BytesIO(blob), io.BytesIO())
    with pytest.raises(IntegrityError):
        decrypt_stream("aes-gcm-256", KEY["aes-gcm-256"], bytes(12), io.BytesIO(blob), io.BytesIO())


def test_rejects_truncated_and_extended_files() -> None:
    blob, _ = _enc("aes-gcm-128", os.urandom(5000))
    for bad in (blob[:-1], blob[:100], blob + b"\x00", blob + blob[-16:]):
        with pytest.raises(IntegrityError):
            decrypt_stream("aes-gcm-128", KEY["aes-gcm-128"], IV, io.BytesIO(bad), io.BytesIO())


@pytest.mark.parametrize("size", [0, 15])
def test_rejects_file_shorter_than_tag(size: int) -> None:
    with pytest.raises(IntegrityError, match="shorter than its 16-byte tag"):
        decrypt_stream("aes-gcm-128", KEY["aes-gcm-128"], IV, io.BytesIO(bytes(size)), io.BytesIO())
    with pytest.raises(IntegrityError, match="shorter than its 16-byte tag"):
        compute_cmac("aes-gcm-128", io.BytesIO(bytes(size)))
    with pytest.raises(IntegrityError, match="shorter than its 16-byte tag"):
        compute_cmac("aes-gcm-128", cast(BinaryIO, NonSeekable(bytes(size))))


def test_rejects_valid_file_whose_tag_is_not_the_registered_cmac() -> None:
    # Both files verify under the key: only the registered cmac tells them apart.
    _, old_cmac = _enc("aes-gcm-128", b"version 1")
    new, _ = _enc("aes-gcm-128", b"version 2")
    with pytest.raises(IntegrityError, match="expected cmac"):
        decrypt_stream(
            "aes-gcm-128",
            KEY["aes-gcm-128"],
            IV,
            io.BytesIO(new),
            io.BytesIO(),
            expected_cmac=old_cmac,
        )


def test_rejects_expected_cmac_of_wrong_length() -> None:
    blob, cmac = _enc("aes-gcm-128", b"x")
    with pytest.raises(CryptoError, match="16 bytes"):
        decrypt_stream(
            "aes-gcm-128",
            KEY["aes-gcm-128"],
            IV,
            io.BytesIO(blob),
            io.BytesIO(),
            expected_cmac=cmac[:15],
        )


def test_same_key_and_iv_reuse_the_keystream_q19() -> None:
    # Documents the Teaclave behaviour we must replicate (spec Q19): the XOR of
    # two ciphertexts under the same key+IV is the XOR of the plaintexts.
    a, b = b"attack at dawn!!", b"attack at dusk!!"
    ca, _ = _enc("aes-gcm-128", a)
    cb, _ = _enc("aes-gcm-128", b)
    assert bytes(x ^ y for x, y in zip(ca[:16], cb[:16], strict=True)) == bytes(
        x ^ y for x, y in zip(a, b, strict=True)
    )


def test_raw_copies_bytes_and_has_no_cmac() -> None:
    out = io.BytesIO()
    assert encrypt_stream("raw", b"", b"", io.BytesIO(b"plain"), out) == b""
    assert out.getvalue() == b"plain"
    back = io.BytesIO()
    # spec Q28: a raw input's registered cmac is not checked
    assert (
        decrypt_stream("raw", b"", b"", io.BytesIO(b"plain"), back, expected_cmac=bytes(16)) == b""
    )
    assert back.getvalue() == b"plain"
    with pytest.raises(CryptoError, match="no cmac"):
        compute_cmac("raw", io.BytesIO(b"plain"))
