"""The push-style decryptor (``new_decryptor``): what a network receiver feeds as bytes arrive.

It is the same verification as ``decrypt_stream`` (which is built on it), so
these tests pin what only the push form adds: any split of the ciphertext
into pieces -- through the lent buffer or through ``write`` -- gives the same
plaintext and cmac, and every tampering is refused at a ``write`` or at
``finish``, never accepted.
"""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confide.config import Limits
from confide.crypto import (
    PUSH_SCHEMAS,
    CryptoError,
    CryptoLimitError,
    Decryptor,
    IntegrityError,
    _stream,
    encrypt_stream,
    new_decryptor,
)

KEYS = {
    "aes-gcm-128": (bytes(range(16)), bytes(12)),
    "aes-gcm-256": (bytes(range(32)), bytes(12)),
    "confide-stream-256": (bytes(range(32)), b""),
}
SMALL_SEGMENT = 4096


def _encrypt(schema: str, plain: bytes) -> tuple[bytes, bytes]:
    key, iv = KEYS[schema]
    out = io.BytesIO()
    if schema == "confide-stream-256":  # small segments: many segment boundaries
        cmac = _stream.encrypt(key, io.BytesIO(plain), out, rng=os.urandom, progress=None,
                               segment_size=SMALL_SEGMENT)  # fmt: skip
    else:
        cmac = encrypt_stream(schema, key, iv, io.BytesIO(plain), out)
    return out.getvalue(), cmac


def _feed(dec: Decryptor, blob: bytes, pieces: list[int], *, lend: bool) -> None:
    at = 0
    for size in [*pieces, len(blob)]:
        while size > 0 and at < len(blob):
            part = blob[at : at + size]
            if lend:
                region = dec.get_buffer()
                assert len(region) > 0
                k = min(len(region), len(part))
                region[:k] = part[:k]
                dec.buffer_updated(k)
            else:
                k = dec.write(part)
                assert k == len(part)
            at += k
            size -= k


def _push(schema: str, blob: bytes, cmac: bytes | None, pieces: list[int],
          *, lend: bool = True) -> tuple[bytes, bytes]:  # fmt: skip
    key, iv = KEYS[schema]
    out = io.BytesIO()
    dec = new_decryptor(schema, key, iv, out, expected_cmac=cmac)
    _feed(dec, blob, pieces, lend=lend)
    cmac_seen = dec.finish()  # writes the last plaintext
    return out.getvalue(), cmac_seen


def test_push_schemas_are_the_single_pass_formats() -> None:
    assert frozenset(KEYS) == PUSH_SCHEMAS


def test_refuses_formats_that_cannot_be_verified_as_a_stream() -> None:
    with pytest.raises(CryptoError, match="cannot be decrypted as a push stream"):
        new_decryptor("raw", b"", b"", io.BytesIO())
    # teaclave-file-128 can be, given its file name (tests/crypto/test_pfs_push.py)
    with pytest.raises(CryptoError, match="needs file_name"):
        new_decryptor("teaclave-file-128", bytes(16), b"", io.BytesIO())


def test_refuses_expected_cmac_of_wrong_length() -> None:
    key, iv = KEYS["aes-gcm-128"]
    with pytest.raises(CryptoError, match="expected_cmac must be 16 bytes"):
        new_decryptor("aes-gcm-128", key, iv, io.BytesIO(), expected_cmac=bytes(15))


@settings(max_examples=60, deadline=None)
@given(
    schema=st.sampled_from(sorted(KEYS)),
    size=st.sampled_from([0, 1, 15, 16, 17, 4095, 4096, 4097, 3 * 4096, 3 * 4096 + 5]),
    pieces=st.lists(st.integers(min_value=1, max_value=9000), max_size=12),
    lend=st.booleans(),
)
def test_any_split_gives_the_plaintext_and_cmac(
    schema: str, size: int, pieces: list[int], lend: bool
) -> None:
    plain = os.urandom(size)
    blob, cmac = _encrypt(schema, plain)
    assert _push(schema, blob, cmac, pieces, lend=lend) == (plain, cmac)


def test_large_file_in_receiver_sized_pieces() -> None:
    plain = os.urandom(3 * (1 << 20) + 123)
    for schema in KEYS:
        key, iv = KEYS[schema]
        out = io.BytesIO()
        cmac = encrypt_stream(schema, key, iv, io.BytesIO(plain), out)
        assert _push(schema, out.getvalue(), cmac, [65536] * 80) == (plain, cmac)


@pytest.mark.parametrize("schema", sorted(KEYS))
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_rejects_tampered_byte(schema: str, where: str) -> None:
    blob, cmac = _encrypt(schema, os.urandom(3 * SMALL_SEGMENT + 100))
    index = {"first": 0, "middle": len(blob) // 2, "last": len(blob) - 1}[where]
    bad = bytearray(blob)
    bad[index] ^= 0x01
    with pytest.raises(IntegrityError):
        _push(schema, bytes(bad), cmac, [1000])


@pytest.mark.parametrize("schema", sorted(KEYS))
def test_rejects_valid_file_with_another_registered_cmac(schema: str) -> None:
    blob, _ = _encrypt(schema, b"hello world")
    with pytest.raises(IntegrityError, match="differs from the expected cmac"):
        _push(schema, blob, bytes(16), [])


@pytest.mark.parametrize("schema", sorted(KEYS))
def test_rejects_wrong_key(schema: str) -> None:
    blob, _ = _encrypt(schema, b"hello world" * 1000)
    key, iv = KEYS[schema]
    dec = new_decryptor(schema, bytes(len(key)), iv, io.BytesIO(), expected_cmac=None)
    with pytest.raises(IntegrityError):
        _feed(dec, blob, [], lend=True)
        dec.finish()


@pytest.mark.parametrize("schema", sorted(KEYS))
@pytest.mark.parametrize("cut", [1, 16, 17, SMALL_SEGMENT + 16])
def test_rejects_truncated_file(schema: str, cut: int) -> None:
    blob, cmac = _encrypt(schema, os.urandom(3 * SMALL_SEGMENT))
    with pytest.raises(IntegrityError):
        _push(schema, blob[:-cut], cmac, [777])


@pytest.mark.parametrize("schema", sorted(KEYS))
def test_rejects_extended_file(schema: str) -> None:
    blob, cmac = _encrypt(schema, os.urandom(2 * SMALL_SEGMENT))
    with pytest.raises(IntegrityError):
        _push(schema, blob + b"\x00" * 20, cmac, [])


@pytest.mark.parametrize("schema", sorted(KEYS))
def test_rejects_empty_and_too_short_input(schema: str) -> None:
    for blob in (b"", b"x" * 15):
        with pytest.raises(IntegrityError, match=r"shorter than its|truncated segment"):
            _push(schema, blob, None, [])


def test_stream_segment_plaintext_is_written_only_after_it_verifies() -> None:
    blob, cmac = _encrypt("confide-stream-256", os.urandom(3 * SMALL_SEGMENT))
    bad = bytearray(blob)
    bad[-40] ^= 0x01  # in the last segment
    out = io.BytesIO()
    key, iv = KEYS["confide-stream-256"]
    dec = new_decryptor("confide-stream-256", key, iv, out, expected_cmac=cmac)
    dec.write(bytes(bad))
    assert len(out.getvalue()) == 2 * SMALL_SEGMENT  # the last one waits for finish()
    with pytest.raises(IntegrityError, match=r"segment 2 \(last\) does not verify"):
        dec.finish()
    assert len(out.getvalue()) == 2 * SMALL_SEGMENT


def test_input_over_the_encrypted_file_cap_is_refused() -> None:
    limits = Limits(max_encrypted_file_bytes=100)
    key, iv = KEYS["aes-gcm-128"]
    dec = new_decryptor("aes-gcm-128", key, iv, io.BytesIO(), limits=limits)
    dec.write(bytes(100))
    with pytest.raises(CryptoLimitError, match="exceeds 100 bytes"):
        dec.write(b"x")

