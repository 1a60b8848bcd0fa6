"""confide-stream-256: round trips and the attacks a STREAM construction must stop."""

from __future__ import annotations

import hashlib
import io
import os
import struct
from typing import BinaryIO, cast

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from confide.crypto import (
    CryptoLimitError,
    IntegrityError,
    _stream,
    compute_cmac,
    decrypt_stream,
    encrypt_stream,
)

from .conftest import NonSeekable, ScriptedRng

KEY = bytes(range(32))
SCHEMA = "confide-stream-256"
SEG = 4096
CHUNK = SEG + 16
HDR = 52


def _enc(data: bytes, seg: int = SEG, rng: ScriptedRng | None = None) -> tuple[bytes, bytes]:
    out = io.BytesIO()
    cmac = _stream.encrypt(
        KEY, io.BytesIO(data), out, rng=rng or ScriptedRng(os.urandom(32), os.urandom(7)),
        progress=None, segment_size=seg,
    )  # fmt: skip
    return out.getvalue(), cmac


def _dec(blob: bytes, expected: bytes | None = None, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    decrypt_stream(SCHEMA, key, b"", io.BytesIO(blob), out, expected_cmac=expected)
    return out.getvalue()


def _segments(blob: bytes) -> list[bytes]:
    body = blob[HDR:]
    return [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]


@pytest.mark.parametrize("size", [0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG, 5 * SEG + 17])
def test_round_trip_small_segments(size: int) -> None:
    data = os.urandom(size)
    blob, cmac = _enc(data)
    segments = max(1, -(-size // SEG))
    assert len(blob) == HDR + size + 16 * segments
    assert _dec(blob, expected=cmac) == data
    assert compute_cmac(SCHEMA, io.BytesIO(blob)) == cmac
    assert compute_cmac(SCHEMA, cast(BinaryIO, NonSeekable(blob))) == cmac


@pytest.mark.parametrize("size", [0, 1, 3072, 3073, 400_000, (1 << 20), 5_000_000])
def test_round_trip_public_api_default_segments(size: int) -> None:
    data = os.urandom(size)
    out = io.BytesIO()
    cmac = encrypt_stream(SCHEMA, KEY, b"", io.BytesIO(data), out)
    src = cast(BinaryIO, NonSeekable(out.getvalue()))
    back = cast(BinaryIO, NonSeekable())
    assert decrypt_stream(SCHEMA, KEY, b"", src, back, expected_cmac=cmac) == cmac
    assert cast(NonSeekable, back).getvalue() == data


def test_matches_documented_construction() -> None:
    # Re-derive the format from docs/file-formats.md with primitives only.
    salt, prefix = bytes(range(32, 64)), bytes(range(7))
    data = os.urandom(2 * SEG + 5)
    blob, cmac = _enc(data, rng=ScriptedRng(salt, prefix))
    header = b"CNFS\x01\x00\x00\x00" + struct.pack(">I", SEG) + salt + prefix + b"\x00"
    assert blob[:HDR] == header
    info = b"confide-stream-256 v1 file key" + header[:12] + prefix
    k = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(KEY)
    pieces = [data[:SEG], data[SEG : 2 * SEG], data[2 * SEG :]]
    expected = header
    tags = b""
    for i, p in enumerate(pieces):
        nonce = prefix + struct.pack(">I", i) + (b"\x01" if i == 2 else b"\x00")
        sealed = AESGCM(k).encrypt(nonce, p, None)
        expected += sealed
        tags += sealed[-16:]
    assert blob == expected
    assert cmac == hashlib.sha256(header + tags).digest()[:16]


def test_known_answer_is_stable() -> None:
    # Pins the format: a change here breaks every file already written.
    blob, cmac = _enc(b"confide", rng=ScriptedRng(bytes(32), bytes(7)))
    assert blob.hex() == (
        "434e465301000000"
        "00001000" + "00" * 32 + "00" * 7 + "00"
        "d606f5992c49908fc9254cca54d3a51864e4a97757986f"
    )
    assert cmac.hex() == "8a8c8d1c23b7a818b422c1a16f1452de"


def test_same_plaintext_and_key_give_unrelated_ciphertexts() -> None:
    data = b"A" * 10_000
    a, ca = _enc(data)
    b, cb = _enc(data)
    assert ca != cb
    assert a[HDR + 100 : HDR + 200] != b[HDR + 100 : HDR + 200]


def test_rejects_truncation_at_segment_boundary() -> None:
    blob, _ = _enc(os.urandom(3 * SEG + 10))
    truncated = blob[: HDR + 3 * CHUNK]  # drop the last segment entirely
    with pytest.raises(IntegrityError, match=r"segment 2 \(last\) does not verify"):
        _dec(truncated)


def test_rejects_truncation_of_exact_multiple() -> None:
    blob, _ = _enc(os.urandom(3 * SEG))
    with pytest.raises(IntegrityError, match=r"segment 1 \(last\)"):
        _dec(blob[: HDR + 2 * CHUNK])


@pytest.mark.parametrize(
    "extra", ["copy of last segment", "empty segment tag", "one byte", "new segment"]
)
def test_rejects_extension(extra: str) -> None:
    blob, _ = _enc(os.urandom(2 * SEG))
    other, _ = _enc(os.urandom(SEG))
    tail = {
        "copy of last segment": _segments(blob)[-1],
        "empty segment tag": blob[-16:],
        "one byte": b"\x00",
        "new segment": _segments(other)[0],
    }[extra]
    with pytest.raises(IntegrityError):
        _dec(blob + tail)


def test_rejects_reordered_segments() -> None:
    blob, _ = _enc(os.urandom(3 * SEG + 1))
    s = _segments(blob)
    with pytest.raises(IntegrityError, match="segment 0 does not verify"):
        _dec(blob[:HDR] + s[1] + s[0] + s[2] + s[3])


def test_rejects_dropped_first_segment() -> None:
    blob, _ = _enc(os.urandom(3 * SEG + 1))
    s = _segments(blob)
    with pytest.raises(IntegrityError, match="segment 0 does not verify"):
        _dec(blob[:HDR] + b"".join(s[1:]))


def test_rejects_segment_spliced_from_another_file_under_the_same_key() -> None:
    a, _ = _enc(os.urandom(2 * SEG + 3))
    b, _ = _enc(os.urandom(2 * SEG + 3))
    sa, sb = _segments(a), _segments(b)
    with pytest.raises(IntegrityError, match="segment 1 does not verify"):
        _dec(a[:HDR] + sa[0] + sb[1] + sa[2])
    with pytest.raises(IntegrityError, match="segment 0 does not verify"):
        _dec(b[:HDR] + sa[0] + sa[1] + sa[2])  # header of b, body of a


@pytest.mark.parametrize("pos", [0, 3, 4, 5, 7, 9, 10, 11, 12, 43, 44, 50, 51])
def test_rejects_flipped_header_byte(pos: int) -> None:
    blob, _ = _enc(os.urandom(100))
    bad = bytearray(blob)
    bad[pos] ^= 0x01
    with pytest.raises(IntegrityError):
        _dec(bytes(bad))


def test_rejects_segment_size_over_cap_before_allocating() -> None:
    blob, _ = _enc(os.urandom(100))
    bad = bytearray(blob)
    bad[8] ^= 0x01  # segment size 16 MiB + 4096
    with pytest.raises(CryptoLimitError, match="segment size 16781312"):
        _dec(bytes(bad))


@pytest.mark.parametrize(
    "pos", [HDR, HDR + 100, HDR + SEG - 1, HDR + SEG + 5, HDR + CHUNK, -17, -1]
)
def test_rejects_flipped_body_byte(pos: int) -> None:
    blob, _ = _enc(os.urandom(SEG + 50))
    bad = bytearray(blob)
    bad[pos] ^= 0x80
    with pytest.raises(IntegrityError, match="does not verify"):
        _dec(bytes(bad))


def test_rejects_wrong_key() -> None:
    blob, _ = _enc(b"secret")
    with pytest.raises(IntegrityError, match=r"segment 0 .* does not verify"):
        _dec(blob, key=bytes(32))


def test_rejects_registered_cmac_of_another_version() -> None:
    _, old_cmac = _enc(b"v1")
    new, _ = _enc(b"v2")
    with pytest.raises(IntegrityError, match="expected cmac"):
        _dec(new, expected=old_cmac)


@pytest.mark.parametrize("size", [0, 10, HDR - 1, HDR, HDR + 15])
def test_rejects_short_files(size: int) -> None:
    blob, _ = _enc(b"")
    with pytest.raises(IntegrityError):
        _dec(blob[:size])
    with pytest.raises(IntegrityError):
        compute_cmac(SCHEMA, io.BytesIO(blob[:size]))


def test_cmac_identifies_tags_without_key_and_decryption_verifies() -> None:
    # compute_cmac is keyless: it names the ciphertext, it does not authenticate it.
    blob, cmac = _enc(os.urandom(SEG * 2))
    bad = bytearray(blob)
    bad[HDR + 10] ^= 1  # body byte, tags unchanged
    assert compute_cmac(SCHEMA, io.BytesIO(bytes(bad))) == cmac
    with pytest.raises(IntegrityError):
        _dec(bytes(bad), expected=cmac)


def test_segment_plaintext_is_released_only_after_its_tag_verifies() -> None:
    data = os.urandom(3 * SEG)
    blob, _ = _enc(data)
    bad = bytearray(blob)
    bad[HDR + CHUNK + 7] ^= 1  # segment 1
    out = io.BytesIO()
    with pytest.raises(IntegrityError, match="segment 1"):
        decrypt_stream(SCHEMA, KEY, b"", io.BytesIO(bytes(bad)), out)
    assert out.getvalue() == data[:SEG]  # the authentic prefix only


def test_writer_rejects_invalid_segment_size() -> None:
    with pytest.raises(ValueError):
        _enc(b"x", seg=4095)
