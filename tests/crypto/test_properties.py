"""Property tests: every schema round-trips any plaintext; any single flip is caught."""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confide.crypto import (
    CryptoLimitError,
    IntegrityError,
    _stream,
    compute_cmac,
    decrypt_stream,
    encrypt_stream,
)

KEYS = {
    "aes-gcm-128": (bytes(range(16)), bytes(12)),
    "aes-gcm-256": (bytes(range(32)), bytes(12)),
    "teaclave-file-128": (bytes(range(16)), b""),
    "confide-stream-256": (bytes(range(32)), b""),
}
NAME = "p.enc"
SCHEMAS = sorted(KEYS)

# Sizes cluster around the formats' boundaries: 3072/4096 (protected fs), 4096 (stream segments).
sizes = st.one_of(
    st.integers(0, 64),
    st.integers(3000, 3200),
    st.integers(4000, 4200),
    st.integers(7100, 7300),
    st.integers(8100, 8300),
    st.integers(0, 20_000),
)


def _encrypt(schema: str, data: bytes) -> tuple[bytes, bytes]:
    key, iv = KEYS[schema]
    out = io.BytesIO()
    if schema == "confide-stream-256":  # small segments to exercise many of them
        cmac = _stream.encrypt(
            key, io.BytesIO(data), out, rng=os.urandom, progress=None, segment_size=4096
        )
    else:
        cmac = encrypt_stream(schema, key, iv, io.BytesIO(data), out, file_name=NAME)
    return out.getvalue(), cmac


@pytest.mark.parametrize("schema", SCHEMAS)
@settings(max_examples=40, deadline=None)
@given(data=st.data(), size=sizes)
def test_round_trip_any_plaintext(schema: str, data: st.DataObject, size: int) -> None:
    plain = data.draw(st.binary(min_size=size, max_size=size))
    blob, cmac = _encrypt(schema, plain)
    key, iv = KEYS[schema]
    out = io.BytesIO()
    assert (
        decrypt_stream(schema, key, iv, io.BytesIO(blob), out, file_name=NAME, expected_cmac=cmac)
        == cmac
    )
    assert out.getvalue() == plain
    assert compute_cmac(schema, io.BytesIO(blob)) == cmac


@pytest.mark.parametrize("schema", SCHEMAS)
@settings(max_examples=40, deadline=None)
@given(size=sizes, where=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_rejects_any_single_bit_flip(schema: str, size: int, where: float, bit: int) -> None:
    blob, _ = _encrypt(schema, bytes(size))
    bad = bytearray(blob)
    bad[int(where * len(blob))] ^= 1 << bit
    key, iv = KEYS[schema]
    # A flip in the stream header's segment-size field may trip the cap first.
    with pytest.raises((IntegrityError, CryptoLimitError)):
        decrypt_stream(schema, key, iv, io.BytesIO(bytes(bad)), io.BytesIO(), file_name=NAME)
