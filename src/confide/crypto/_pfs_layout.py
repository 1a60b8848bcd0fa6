"""Byte layout of ``teaclave-file-128`` (Intel SGX Protected FS, user-key mode).

Pure functions only: parsing and packing of the metadata node, node numbering
of the Merkle hash tree, and key derivation. ``_pfs.py`` does the I/O.
Layout facts: ``/work/shared/vectors/README.md`` §A and teaclave-sgx-sdk
``sgx_protected_fs`` (``metadata.rs``, ``node.rs``); summary in
``docs/file-formats.md``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from ._errors import CryptoError, IntegrityError

__all__ = [
    "CHILD_PER_MHT",
    "DATA_PER_MHT",
    "HEADER_LENGTH",
    "MD_DATA_LENGTH",
    "META_ENCRYPTED_LENGTH",
    "NODE",
    "ZERO_NONCE",
    "Header",
    "Metadata",
    "NodeKeyDeriver",
    "build_header",
    "check_file_name",
    "data_count",
    "data_physical",
    "derive_node_keys",
    "metadata_key",
    "mht_physical",
    "node_count",
    "pack_metadata",
    "parse_header",
    "unpack_metadata",
]

NODE: Final = 4096
HEADER_LENGTH: Final = 96
MD_DATA_LENGTH: Final = 3072  # file bytes [0, 3072) live in the metadata node
NAME_FIELD: Final = 260  # FILENAME_MAX_LEN
MAX_NAME_BYTES: Final = NAME_FIELD - 2  # open() requires len < FILENAME_MAX_LEN - 1
META_ENCRYPTED_LENGTH: Final = NAME_FIELD + 8 + 16 + 16 + MD_DATA_LENGTH  # 3372
DATA_PER_MHT: Final = 96
CHILD_PER_MHT: Final = 32
ZERO_NONCE: Final = bytes(12)

FILE_ID: Final = 0x5347585F46494C45  # b"ELIF_XGS" little-endian
MAJOR_VERSION: Final = 1
MINOR_VERSION: Final = 0
FLAG_USER_KEY: Final = 1
# file_id, major, minor, encrypt_flags, update_flag, key_policy, isv_svn,
# key_id[32], cpu_svn[16], attribute_mask[16], gmac[16]
_HEADER = struct.Struct("<QBBBBHH32s16s16s16s")
_META = struct.Struct(f"<{NAME_FIELD}sQ16s16s{MD_DATA_LENGTH}s")
_KDF_LABEL_METADATA: Final = b"SGX-PROTECTED-FS-METADATA-KEY"
# index, label[64], padding, node_number, nonce[32], output_len, padding
_KDF = struct.Struct("<I64sIQ32sII")


@dataclass(frozen=True)
class Header:
    """The plain (unencrypted, unauthenticated) part of the metadata node."""

    key_id: bytes
    gmac: bytes


@dataclass(frozen=True)
class Metadata:
    """The encrypted part of the metadata node, after decryption."""

    file_name: str
    size: int
    mht_key: bytes
    mht_gmac: bytes
    data: bytes


def parse_header(unverified: bytes) -> Header:
    """Parse the first 96 bytes of a file.

    Only ``key_id`` and ``gmac`` are bound to the file by cryptography (through
    the metadata key and tag); every other field must hold the exact value a
    user-key writer stores, so no byte of the header can change unnoticed.

    Raises:
        IntegrityError: naming the first field that is wrong.
    """
    if len(unverified) < HEADER_LENGTH:
        raise IntegrityError("teaclave-file-128: file is shorter than its header")
    (file_id, major, minor, flags, update, policy, isv_svn, key_id, cpu_svn, attr, gmac) = (
        _HEADER.unpack_from(unverified)
    )
    if file_id != FILE_ID:
        raise IntegrityError("teaclave-file-128: not an SGX protected file (bad file id)")
    if major != MAJOR_VERSION or minor != MINOR_VERSION:
        raise IntegrityError(f"teaclave-file-128: unsupported version {major}.{minor}")
    if flags != FLAG_USER_KEY:
        raise IntegrityError(f"teaclave-file-128: encrypt flags {flags} are not user-key (1)")
    if update:
        raise IntegrityError("teaclave-file-128: update flag set (interrupted write)")
    if policy or isv_svn or any(cpu_svn) or any(attr):
        raise IntegrityError("teaclave-file-128: non-zero sealing fields in a user-key file")
    return Header(key_id=key_id, gmac=gmac)


def build_header(key_id: bytes, gmac: bytes) -> bytes:
    """Return the 96-byte plain header of a user-key file."""
    return _HEADER.pack(
        FILE_ID, MAJOR_VERSION, MINOR_VERSION, FLAG_USER_KEY, 0, 0, 0,
        key_id, bytes(16), bytes(16), gmac,
    )  # fmt: skip


def metadata_key(user_key: bytes, key_id: bytes) -> bytes:
    """AES-128-CMAC(user_key, KDF input) with label ``SGX-PROTECTED-FS-METADATA-KEY``."""
    kdf = _KDF.pack(1, _KDF_LABEL_METADATA, 0, 0, key_id, 0x80, 0)
    mac = CMAC(algorithms.AES(user_key))
    mac.update(kdf)
    return mac.finalize()


def derive_node_keys(master: bytes, kind: int, first: int, count: int) -> list[bytes]:
    """Per-node keys for the writer: AES-128-ECB(master, kind ‖ 0⁷ ‖ u64be(number)).

    Distinct inputs under a fresh random ``master`` give distinct pseudorandom
    keys, so each key encrypts exactly one node once (zero IV is then safe),
    and the writer can recompute a key instead of storing it. Readers never
    derive: they use the keys stored in the tree.
    """
    out = NodeKeyDeriver(master).block(kind, first, count)
    return [out[i : i + 16] for i in range(0, len(out), 16)]


class NodeKeyDeriver:
    """:func:`derive_node_keys` with one ECB context for a whole file (ECB keeps no state
    between blocks, so one encryptor serves every call)."""

    def __init__(self, master: bytes) -> None:
        cipher = Cipher(algorithms.AES(master), modes.ECB())  # noqa: S305 - PRF use
        self._ecb = cipher.encryptor()

    def block(self, kind: int, first: int, count: int) -> bytes:
        """The keys of nodes ``first .. first + count - 1``, concatenated (16 bytes each)."""
        blocks = bytearray(16 * count)
        words = memoryview(blocks).cast("Q")  # each block = two 8-byte words, copied raw
        words[0::2] = memoryview((bytes([kind]) + bytes(7)) * count).cast("Q")
        words[1::2] = memoryview(struct.pack(f">{count}Q", *range(first, first + count))).cast(
            "Q"
        )
        return self._ecb.update(blocks)


def check_file_name(file_name: str) -> bytes:
    """Return the name's UTF-8 bytes if a protected file may carry it."""
    raw = file_name.encode("utf-8")
    if not raw or len(raw) > MAX_NAME_BYTES or b"\x00" in raw or b"/" in raw:
        raise CryptoError(
            f"teaclave-file-128 file name must be 1..{MAX_NAME_BYTES} bytes, "
            f"without NUL or '/': {file_name!r}"
        )
    return raw


def pack_metadata(name: bytes, size: int, mht_key: bytes, mht_gmac: bytes, data: bytes) -> bytes:
    """Pack the 3372-byte plaintext of the metadata node (``data`` zero-padded)."""
    return _META.pack(name, size, mht_key, mht_gmac, data)


def unpack_metadata(plaintext: bytes) -> Metadata:
    """Unpack the decrypted metadata; the name must be NUL-terminated UTF-8."""
    name_field, size, mht_key, mht_gmac, data = _META.unpack(plaintext)
    nul = name_field.find(b"\x00")
    if nul < 0:
        raise IntegrityError("teaclave-file-128: embedded file name is not NUL-terminated")
    try:
        name = name_field[:nul].decode("utf-8")
    except UnicodeDecodeError as e:
        raise IntegrityError("teaclave-file-128: embedded file name is not UTF-8") from e
    return Metadata(name, size, mht_key, mht_gmac, data)


def data_count(size: int) -> int:
    """Number of data nodes holding bytes past the first 3072."""
    if size <= MD_DATA_LENGTH:
        return 0
    return (size - MD_DATA_LENGTH + NODE - 1) // NODE


def data_physical(n: int) -> int:
    """Physical node number of logical data node ``n``."""
    return n + 2 + n // DATA_PER_MHT


def mht_physical(m: int) -> int:
    """Physical node number of MHT node ``m`` (the root is ``m = 0``)."""
    return 1 + (DATA_PER_MHT + 1) * m


def node_count(size: int) -> int:
    """Total number of 4096-byte nodes of a file whose plaintext has ``size`` bytes."""
    n = data_count(size)
    return 1 if n == 0 else data_physical(n - 1) + 1
