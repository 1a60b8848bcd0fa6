"""One test per cap of confide.crypto: cap is accepted, cap + 1 is refused."""

from __future__ import annotations

import io
import os
from typing import BinaryIO, cast

import pytest

from confide.config import Limits
from confide.crypto import (
    CryptoLimitError,
    _aes_gcm,
    _stream,
    compute_cmac,
    decrypt_stream,
    encrypt_stream,
)

from .conftest import NonSeekable

KEYS = {
    "aes-gcm-128": (bytes(16), bytes(12)),
    "aes-gcm-256": (bytes(32), bytes(12)),
    "teaclave-file-128": (bytes(16), b""),
    "confide-stream-256": (bytes(32), b""),
    "raw": (b"", b""),
}
NAME = "f.enc"


def _encrypt(schema: str, data: bytes) -> bytes:
    key, iv = KEYS[schema]
    out = io.BytesIO()
    encrypt_stream(schema, key, iv, io.BytesIO(data), out, file_name=NAME)
    return out.getvalue()


def _decrypt(schema: str, blob: bytes, limits: Limits) -> bytes:
    key, iv = KEYS[schema]
    out = io.BytesIO()
    decrypt_stream(schema, key, iv, io.BytesIO(blob), out, file_name=NAME, limits=limits)
    return out.getvalue()


@pytest.mark.parametrize("schema", sorted(KEYS))
def test_max_encrypted_file_bytes_on_decrypt(schema: str) -> None:
    data = os.urandom(20_000)
    blob = _encrypt(schema, data)
    assert _decrypt(schema, blob, Limits(max_encrypted_file_bytes=len(blob))) == data
    with pytest.raises(CryptoLimitError, match="exceeds"):
        _decrypt(schema, blob, Limits(max_encrypted_file_bytes=len(blob) - 1))


@pytest.mark.parametrize("schema", ["aes-gcm-128", "confide-stream-256", "teaclave-file-128"])
@pytest.mark.parametrize("seekable", [True, False])
def test_max_encrypted_file_bytes_on_compute_cmac(schema: str, seekable: bool) -> None:
    blob = _encrypt(schema, os.urandom(20_000))

    def src() -> BinaryIO:
        return io.BytesIO(blob) if seekable else cast(BinaryIO, NonSeekable(blob))

    compute_cmac(schema, src(), limits=Limits(max_encrypted_file_bytes=len(blob)))
    if schema == "teaclave-file-128":
        return  # reads only the 96-byte header
    with pytest.raises(CryptoLimitError):
        compute_cmac(schema, src(), limits=Limits(max_encrypted_file_bytes=len(blob) - 1))


@pytest.mark.parametrize("size", [100, 3072, 3073, 50_000])
def test_max_teaclave_file_bytes_on_write(size: int) -> None:
    data = os.urandom(size + 1)
    with pytest.raises(CryptoLimitError, match="teaclave-file-128 plaintext exceeds"):
        encrypt_stream(
            "teaclave-file-128", bytes(16), b"", io.BytesIO(data), io.BytesIO(),
            file_name=NAME, limits=Limits(max_teaclave_file_bytes=size),
        )  # fmt: skip
    encrypt_stream(
        "teaclave-file-128", bytes(16), b"", io.BytesIO(data[:size]), io.BytesIO(),
        file_name=NAME, limits=Limits(max_teaclave_file_bytes=size),
    )  # fmt: skip


def test_max_teaclave_file_bytes_on_read() -> None:
    blob = _encrypt("teaclave-file-128", os.urandom(10_000))
    assert (
        len(_decrypt("teaclave-file-128", blob, Limits(max_teaclave_file_bytes=10_000))) == 10_000
    )
    with pytest.raises(CryptoLimitError, match="teaclave-file-128 plaintext exceeds"):
        _decrypt("teaclave-file-128", blob, Limits(max_teaclave_file_bytes=9_999))


def test_max_stream_segment_bytes() -> None:
    seg = 8192
    out = io.BytesIO()
    _stream.encrypt(
        bytes(32), io.BytesIO(b"x" * 10), out, rng=os.urandom, progress=None, segment_size=seg
    )
    blob = out.getvalue()
    assert _decrypt("confide-stream-256", blob, Limits(max_stream_segment_bytes=seg)) == b"x" * 10
    with pytest.raises(CryptoLimitError, match="segment size 8192 exceeds 8191"):
        _decrypt("confide-stream-256", blob, Limits(max_stream_segment_bytes=seg - 1))
    with pytest.raises(CryptoLimitError, match="segment size"):
        compute_cmac(
            "confide-stream-256", io.BytesIO(blob), limits=Limits(max_stream_segment_bytes=seg - 1)
        )


def test_aes_gcm_nist_length_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # SP 800-38D caps one (key, IV) at 2^36 - 32 bytes; shrink it to test the check.
    monkeypatch.setattr(_aes_gcm, "MAX_PLAINTEXT_BYTES", 100)
    key, iv = KEYS["aes-gcm-128"]
    encrypt_stream("aes-gcm-128", key, iv, io.BytesIO(bytes(100)), io.BytesIO())
    with pytest.raises(CryptoLimitError):
        encrypt_stream("aes-gcm-128", key, iv, io.BytesIO(bytes(101)), io.BytesIO())
    monkeypatch.setattr(_aes_gcm, "MAX_PLAINTEXT_BYTES", 1 << 40)
    blob = _encrypt("aes-gcm-128", bytes(101))
    monkeypatch.setattr(_aes_gcm, "MAX_PLAINTEXT_BYTES", 100)
    with pytest.raises(CryptoLimitError):
        _decrypt("aes-gcm-128", blob, Limits())


def test_stream_segment_counter_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # The nonce holds a 32-bit segment counter; shrink the bound to test the check.
    monkeypatch.setattr(_stream, "MAX_SEGMENTS", 2)
    out = io.BytesIO()
    _stream.encrypt(
        bytes(32), io.BytesIO(bytes(8192)), out, rng=os.urandom, progress=None, segment_size=4096
    )
    with pytest.raises(CryptoLimitError, match="2\\^32"):
        _stream.encrypt(
            bytes(32),
            io.BytesIO(bytes(8193)),
            io.BytesIO(),
            rng=os.urandom,
            progress=None,
            segment_size=4096,
        )
    monkeypatch.setattr(_stream, "MAX_SEGMENTS", 1 << 32)
    blob = io.BytesIO()
    _stream.encrypt(
        bytes(32), io.BytesIO(bytes(8193)), blob, rng=os.urandom, progress=None, segment_size=4096
    )
    monkeypatch.setattr(_stream, "MAX_SEGMENTS", 2)
    with pytest.raises(CryptoLimitError):
        _decrypt("confide-stream-256", blob.getvalue(), Limits())
