"""teaclave-file-128 after batching: the writer's output read by an independent reader.

The writer encrypts ``round_nodes()`` nodes per round with keys from one ECB context and
builds MHT entries with strided copies; the reader decrypts in rounds and writes a
round only after it verifies. These tests check both against a plain per-node
reading of the format (written here from the layout rules, one node at a time) and
pin the batch and MHT boundaries.
"""

from __future__ import annotations

import io
import os
import random

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confide.config import Limits
from confide.crypto import IntegrityError, _pfs, decrypt_stream
from confide.crypto._pfs_layout import (
    HEADER_LENGTH,
    MD_DATA_LENGTH,
    META_ENCRYPTED_LENGTH,
    NODE,
    data_count,
    data_physical,
    derive_node_keys,
    metadata_key,
    mht_physical,
    parse_header,
    unpack_metadata,
)

# every test on both paths: the C extension and the pure-Python one (conftest.pfs_path)
pytestmark = pytest.mark.usefixtures("pfs_path")

KEY = bytes(range(16))
NAME = "batch.bin"
BATCH = _pfs._BATCH
ZERO = bytes(12)


def _encrypt(data: bytes, seed: int = 1) -> tuple[bytes, bytes]:
    rnd = random.Random(seed)
    out = io.BytesIO()
    cmac = _pfs.encrypt(
        KEY, io.BytesIO(data), out, file_name=NAME, rng=rnd.randbytes, progress=None,
        limits=Limits(),
    )  # fmt: skip
    return out.getvalue(), cmac


def _node(blob: bytes, physical: int) -> bytes:
    return blob[physical * NODE : (physical + 1) * NODE]


def _reference_read(blob: bytes) -> bytes:
    """Decrypt node by node, walking the MHT from the root for every data node."""
    header = parse_header(blob)
    meta_ct = blob[HEADER_LENGTH : HEADER_LENGTH + META_ENCRYPTED_LENGTH]
    meta = unpack_metadata(
        AESGCM(metadata_key(KEY, header.key_id)).decrypt(ZERO, meta_ct + header.gmac, None)
    )
    out = bytearray(meta.data[: min(meta.size, MD_DATA_LENGTH)])

    def mht(m: int) -> bytes:
        if m == 0:
            key, gmac = meta.mht_key, meta.mht_gmac
        else:
            parent = mht((m - 1) // 32)
            at = 3072 + ((m - 1) % 32) * 32
            key, gmac = parent[at : at + 16], parent[at + 16 : at + 32]
        return AESGCM(key).decrypt(ZERO, _node(blob, mht_physical(m)) + gmac, None)

    for n in range(data_count(meta.size)):
        entry = mht(n // 96)[(n % 96) * 32 : (n % 96) * 32 + 32]
        plain = AESGCM(entry[:16]).decrypt(ZERO, _node(blob, data_physical(n)) + entry[16:], None)
        out += plain
    return bytes(out[: meta.size])


SIZES = [
    MD_DATA_LENGTH + NODE * BATCH - 1,
    MD_DATA_LENGTH + NODE * BATCH,
    MD_DATA_LENGTH + NODE * BATCH + 1,
    MD_DATA_LENGTH + NODE * 96 - 5,
    MD_DATA_LENGTH + NODE * 97,
    MD_DATA_LENGTH + NODE * 96 * 34 + 123,  # MHT node 0 has 32 children, node 1 has one
]


@pytest.mark.parametrize("size", SIZES)
def test_reference_reader_reads_the_batched_writer(size: int) -> None:
    data = os.urandom(size)
    blob, _ = _encrypt(data)
    assert _reference_read(blob) == data
    out = io.BytesIO()
    decrypt_stream("teaclave-file-128", KEY, b"", io.BytesIO(blob), out, file_name=NAME)
    assert out.getvalue() == data


# pfs_path is set once per test, the same for every example
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.integers(0, MD_DATA_LENGTH + NODE * (2 * BATCH + 3)))
def test_any_size_round_trips_through_the_reference_reader(size: int) -> None:
    data = random.Random(size).randbytes(size)
    blob, _ = _encrypt(data, seed=size)
    assert _reference_read(blob) == data


def test_mht_entries_hold_the_derived_node_keys() -> None:
    rnd = random.Random(5)
    master = random.Random(5).randbytes(16)  # the writer's first rng call
    out = io.BytesIO()
    data = os.urandom(MD_DATA_LENGTH + NODE * 40)
    _pfs.encrypt(KEY, io.BytesIO(data), out, file_name=NAME, rng=rnd.randbytes, progress=None,
                 limits=Limits())  # fmt: skip
    blob = out.getvalue()
    header = parse_header(blob)
    meta_ct = blob[HEADER_LENGTH : HEADER_LENGTH + META_ENCRYPTED_LENGTH]
    meta = unpack_metadata(
        AESGCM(metadata_key(KEY, header.key_id)).decrypt(ZERO, meta_ct + header.gmac, None)
    )
    assert meta.mht_key == derive_node_keys(master, 2, 0, 1)[0]
    root = AESGCM(meta.mht_key).decrypt(ZERO, _node(blob, 1) + meta.mht_gmac, None)
    keys = derive_node_keys(master, 1, 0, 40)
    for n in range(40):
        key, gmac = root[n * 32 : n * 32 + 16], root[n * 32 + 16 : n * 32 + 32]
        assert key == keys[n]
        sealed = AESGCM(key).encrypt(ZERO, data[MD_DATA_LENGTH + n * NODE :][:NODE], None)
        assert gmac == sealed[NODE:]
    assert not any(root[40 * 32 :])


def test_a_bad_node_fails_its_round_before_any_of_the_round_is_written() -> None:
    batch = _pfs.round_nodes()  # 16 on the pure path, 96 with the C extension
    data = os.urandom(MD_DATA_LENGTH + NODE * (2 * batch + 4))
    blob, _ = _encrypt(data)
    bad_node = batch + 3  # inside the second round
    bad = bytearray(blob)
    bad[data_physical(bad_node) * NODE + 100] ^= 1
    out = io.BytesIO()
    with pytest.raises(IntegrityError, match=f"data node {bad_node} does not verify"):
        decrypt_stream("teaclave-file-128", KEY, b"", io.BytesIO(bytes(bad)), out, file_name=NAME)
    assert out.getvalue() == data[: MD_DATA_LENGTH + batch * NODE]


def test_batch_divides_the_mht_fan_out() -> None:
    assert 96 % _pfs.round_nodes() == 0
    assert 96 % _pfs._BATCH == 0 and 96 % _pfs._NATIVE_BATCH == 0
