"""``teaclave-file-128`` reader and writer over seekable file objects.

Reading walks the data nodes in file order and keeps only the verified
Merkle-tree path from the root to the current MHT node (at most a handful of
4 KiB nodes); a parent that left the path is re-read and re-verified from its
own parent, so memory stays bounded and a node changed between two reads is
still caught. Writing stores 16 bytes (the gmac) per node until the end, when
the MHT nodes are built bottom-up: per-node keys are derived from a random
master key (``derive_node_keys``), so they need no storage.

Data nodes are sealed and opened in rounds (:func:`round_nodes`): by the optional
C extension ``_pfs_native`` (one libgcrypt call per round, see ``setup.py``) when it
was built, else by ``cryptography`` one node at a time. Both write the same bytes;
tests force the pure path by setting ``_native`` to ``None``. With the extension,
the writes to a file of more than one round run on a helper thread, in order
(:mod:`._writer`).
"""

from __future__ import annotations

import hmac
import logging
from typing import BinaryIO, Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..config import Limits
from ._errors import CryptoError, CryptoLimitError, IntegrityError
from ._io import ByteCounter, Progress, Rng, read_exact, read_full, require_seekable
from ._pfs_layout import (
    CHILD_PER_MHT,
    DATA_PER_MHT,
    HEADER_LENGTH,
    MD_DATA_LENGTH,
    META_ENCRYPTED_LENGTH,
    NODE,
    ZERO_NONCE,
    Header,
    Metadata,
    NodeKeyDeriver,
    build_header,
    check_file_name,
    data_count,
    data_physical,
    metadata_key,
    mht_physical,
    node_count,
    pack_metadata,
    parse_header,
    unpack_metadata,
)
from ._schemas import TEACLAVE_FILE_128
from ._writer import OrderedWriter

__all__ = [
    "cmac_of",
    "crypto_releases_gil",
    "decrypt",
    "encrypt",
    "open_data_nodes",
    "open_metadata",
    "open_mht",
]

_log = logging.getLogger(__name__)
_KIND_DATA: Final = 1
_KIND_MHT: Final = 2
_ENTRY: Final = 32  # key16 ‖ gmac16
_TAG: Final = 16
#: Nodes per read/encrypt/write round: a divisor of 96, so that a round never crosses an
#: MHT node, and small enough (64 KiB) that its input and output stay in the CPU cache.
_BATCH: Final = 16
#: The same with the C extension: one call per MHT node's 96 data nodes (384 KiB) costs
#: less in Python and system calls than six rounds of 16 (measured: -5..8 % CPU).
_NATIVE_BATCH: Final = 96
_CHILD_OFFSET: Final = DATA_PER_MHT * _ENTRY  # 3072
_META_END: Final = HEADER_LENGTH + META_ENCRYPTED_LENGTH  # 3468
_Bytes = bytes | bytearray | memoryview
_Out = bytearray | memoryview


class _NativeNodes(Protocol):
    """What ``_pfs_native`` offers (its docstrings give the rules)."""

    BACKEND: str

    def seal_nodes(self, keys: _Bytes, plain: _Bytes, out: _Out, gmacs: _Out, /) -> None: ...
    def open_nodes(self, entries: _Bytes, ct: _Bytes, out: _Out, /) -> int: ...


def round_nodes() -> int:
    """Nodes per round on the path in use."""
    return _BATCH if _native is None else _NATIVE_BATCH


def crypto_releases_gil() -> bool:
    """Whether a round's crypto runs without the GIL (the C extension), so that a
    transfer's writes can overlap it (:class:`OrderedWriter`, ``threaded``)."""
    return _native is not None


def _load_native() -> _NativeNodes | None:
    try:
        from . import _pfs_native
    except ImportError:  # built without a C compiler or libgcrypt20-dev: the pure path
        return None
    if not _agrees_with_cryptography(_pfs_native):
        _log.error(
            "confide.crypto._pfs_native (%s) does not match cryptography's AES-GCM on a known "
            "answer; teaclave-file-128 uses the pure-Python path", _pfs_native.BACKEND,
        )  # fmt: skip
        return None
    return _pfs_native


def _agrees_with_cryptography(native: _NativeNodes) -> bool:
    """Seal and open two nodes both ways; any difference (or error) disqualifies ``native``."""
    keys = bytes(range(32))
    plain = bytes(range(256)) * 32
    out, gmacs = bytearray(2 * NODE), bytearray(2 * _TAG)
    try:
        native.seal_nodes(keys, plain, out, gmacs)
        expected = b"".join(
            AESGCM(keys[16 * j : 16 * (j + 1)]).encrypt(ZERO_NONCE, node, None)
            for j, node in enumerate((plain[:NODE], plain[NODE:]))
        )
        entries = keys[:16] + gmacs[:16] + keys[16:] + gmacs[16:]
        back = bytearray(2 * NODE)
        opened = native.open_nodes(entries, out, back)
    except (RuntimeError, ValueError):
        return False
    sealed = bytes(out[:NODE] + gmacs[:16] + out[NODE:] + gmacs[16:])
    return sealed == expected and opened == -1 and back == plain


#: The batch functions in use; ``None``: the pure-Python path.
_native: _NativeNodes | None = _load_native()


def encrypt(
    key: bytes,
    src: BinaryIO,
    dst: BinaryIO,
    *,
    file_name: str | None,
    rng: Rng,
    progress: Progress | None,
    limits: Limits,
) -> bytes:
    """Write ``src`` as a protected file into ``dst``; return the metadata gmac (cmac)."""
    require_seekable(dst, TEACLAVE_FILE_128, "destination")
    if file_name is None:
        raise CryptoError("teaclave-file-128 needs file_name (the name the file is stored as)")
    name = check_file_name(file_name)
    base = dst.tell()
    first = read_exact(src, MD_DATA_LENGTH)
    size = len(first)
    _check_plain_size(size, limits)
    _report(progress, size)
    keys = NodeKeyDeriver(rng(16))
    data_gmacs = bytearray()
    if size == MD_DATA_LENGTH:
        size += _encrypt_data(src, dst, base, keys, data_gmacs, size, progress, limits)
    n_data = len(data_gmacs) // _TAG
    mht_key, mht_gmac = _write_tree(dst, base, keys, n_data, data_gmacs)
    key_id = rng(32)
    meta_plain = pack_metadata(name, size, mht_key, mht_gmac, first)
    sealed = AESGCM(metadata_key(key, key_id)).encrypt(ZERO_NONCE, meta_plain, None)
    gmac = sealed[META_ENCRYPTED_LENGTH:]
    node0 = build_header(key_id, gmac) + sealed[:META_ENCRYPTED_LENGTH]
    dst.seek(base)
    dst.write(node0 + bytes(NODE - len(node0)))
    dst.seek(base + node_count(size) * NODE)
    return gmac


def _encrypt_data(
    src: BinaryIO,
    dst: BinaryIO,
    base: int,
    node_keys: NodeKeyDeriver,
    data_gmacs: bytearray,
    size: int,
    progress: Progress | None,
    limits: Limits,
) -> int:
    """Encrypt the rest of ``src`` into data nodes, :func:`round_nodes` per read and write
    (the writes by an :class:`OrderedWriter`, overlapping the next round's read and crypto).

    Appends each node's gmac to ``data_gmacs``; returns the plaintext byte count.
    """
    native = _native
    batch = round_nodes()
    block = bytearray(batch * NODE)
    view = memoryview(block)
    plain_in = [view[j * NODE : (j + 1) * NODE] for j in range(batch)]
    gmac_view = memoryview(bytearray(batch * _TAG))
    total = 0
    n = 0
    # encrypt_into writes ciphertext ‖ tag: node j's tag lands on node j+1's first 16
    # bytes (copied out at once, then overwritten); 16 spare bytes take the last tag.
    with OrderedWriter(dst, batch * NODE + _TAG, threaded=native is not None) as writer:
        while True:
            got = read_full(src, view)
            if not got:
                break
            total += got
            _check_plain_size(size + total, limits)
            count = (got + NODE - 1) // NODE
            view[got : count * NODE] = bytes(count * NODE - got)  # zero-pad the last node
            keys = node_keys.block(_KIND_DATA, n, count)
            out = writer.acquire()
            if native is not None:
                native.seal_nodes(
                    keys, view[: count * NODE], out[: count * NODE], gmac_view[: count * _TAG]
                )
                data_gmacs += gmac_view[: count * _TAG]
            else:
                for j in range(count):
                    AESGCM(keys[j * 16 : j * 16 + 16]).encrypt_into(
                        ZERO_NONCE, plain_in[j], None, out[j * NODE : (j + 1) * NODE + _TAG]
                    )
                    data_gmacs += out[(j + 1) * NODE : (j + 1) * NODE + _TAG]
            writer.submit(out, 0, count * NODE, base + data_physical(n) * NODE)
            n += count
            _report(progress, got)
            if got < len(block):
                break
    return total


def _write_tree(
    dst: BinaryIO, base: int, node_keys: NodeKeyDeriver, n_data: int, data_gmacs: bytearray
) -> tuple[bytes, bytes]:
    """Write every MHT node, children first; return the root's (key, gmac)."""
    if n_data == 0:
        return bytes(16), bytes(16)
    last = (n_data - 1) // DATA_PER_MHT
    mht_keys = node_keys.block(_KIND_MHT, 0, last + 1)
    mht_gmacs = bytearray(16 * (last + 1))
    gmac_view = memoryview(data_gmacs)
    for m in range(last, -1, -1):
        plain = bytearray(NODE)
        first_data = m * DATA_PER_MHT
        count = min(DATA_PER_MHT, n_data - first_data)
        _interleave(
            plain, 0, node_keys.block(_KIND_DATA, first_data, count),
            gmac_view[first_data * _TAG : (first_data + count) * _TAG],
        )  # fmt: skip
        children = max(0, min(CHILD_PER_MHT, last - CHILD_PER_MHT * m))
        if children:
            child = CHILD_PER_MHT * m + 1
            _interleave(
                plain, _CHILD_OFFSET, mht_keys[child * 16 : (child + children) * 16],
                mht_gmacs[child * 16 : (child + children) * 16],
            )  # fmt: skip
        sealed = AESGCM(mht_keys[m * 16 : m * 16 + 16]).encrypt(ZERO_NONCE, bytes(plain), None)
        mht_gmacs[m * 16 : m * 16 + 16] = sealed[NODE:]
        dst.seek(base + mht_physical(m) * NODE)
        dst.write(sealed[:NODE])
    return mht_keys[:16], bytes(mht_gmacs[:16])


def _interleave(
    dest: bytearray, at: int, keys: bytes | memoryview, gmacs: bytes | bytearray | memoryview
) -> None:
    """Write entries ``key16 ‖ gmac16`` into ``dest`` from ``at`` (one strided copy each)."""
    count = len(keys) // 16
    words = memoryview(dest)[at : at + count * _ENTRY].cast("Q")  # 4 words per entry
    key_words = memoryview(keys).cast("B").cast("Q")
    gmac_words = memoryview(gmacs).cast("B").cast("Q")
    words[0::4] = key_words[0::2]
    words[1::4] = key_words[1::2]
    words[2::4] = gmac_words[0::2]
    words[3::4] = gmac_words[1::2]


def decrypt(
    key: bytes,
    src: BinaryIO,
    dst: BinaryIO,
    *,
    file_name: str | None,
    expected_cmac: bytes | None,
    counter: ByteCounter,
    limits: Limits,
) -> bytes:
    """Verify and decrypt a protected file; return its metadata gmac (cmac).

    Every node is authenticated before its plaintext is written to ``dst``.

    Raises:
        IntegrityError: naming the failed check (header field, cmac, metadata
            tag, embedded name, node count, or which MHT/data node).
        CryptoLimitError: the file or its size field is over a cap.
    """
    require_seekable(src, TEACLAVE_FILE_128, "source")
    if file_name is None:
        raise CryptoError("teaclave-file-128 needs file_name (the name the file is stored as)")
    base = src.tell()
    length = src.seek(0, 2) - base
    src.seek(base)
    counter.check_total(length)
    if length < NODE or length % NODE:
        raise IntegrityError(
            f"teaclave-file-128: file length {length} is not a positive multiple of {NODE}"
        )
    node0 = read_exact(src, NODE)
    header, meta = open_metadata(key, node0, file_name, expected_cmac, limits)
    if node_count(meta.size) * NODE != length:
        raise IntegrityError(
            f"teaclave-file-128: {length // NODE} nodes, but size {meta.size} needs "
            f"{node_count(meta.size)}"
        )
    counter.add(NODE)
    dst.write(meta.data[: min(meta.size, MD_DATA_LENGTH)])
    n_data = data_count(meta.size)
    if n_data:
        _decrypt_data(src, dst, base, meta.mht_key, meta.mht_gmac, meta.size, counter)
    return header.gmac


def open_metadata(
    key: bytes,
    unverified_node0: bytes | bytearray | memoryview,
    file_name: str,
    expected_cmac: bytes | None,
    limits: Limits,
) -> tuple[Header, Metadata]:
    """Check and decrypt the metadata node (node 0).

    Raises:
        IntegrityError: naming the failed check.
        CryptoLimitError: the size field is over ``max_teaclave_file_bytes``.
    """
    node0 = bytes(unverified_node0)
    header = parse_header(node0)
    if any(node0[_META_END:]):
        raise IntegrityError("teaclave-file-128: non-zero padding in the metadata node")
    if expected_cmac is not None and not hmac.compare_digest(header.gmac, expected_cmac):
        raise IntegrityError("teaclave-file-128: metadata gmac differs from the expected cmac")
    meta_ct = node0[HEADER_LENGTH:_META_END]
    plain = _open(metadata_key(key, header.key_id), header.gmac, meta_ct, "metadata node")
    meta = unpack_metadata(plain)
    if meta.file_name != file_name:
        raise IntegrityError(
            f"teaclave-file-128: embedded file name {meta.file_name!r} != {file_name!r}"
        )
    _check_plain_size(meta.size, limits)
    return header, meta


def open_mht(key: bytes, gmac: bytes, ct: bytes | bytearray | memoryview, m: int) -> bytes:
    """Verify and decrypt MHT node ``m`` with the entry its parent (or the metadata) holds."""
    return _open(key, gmac, bytes(ct), f"MHT node {m}")


def open_data_nodes(entries: memoryview, ct: memoryview, out: memoryview, first: int) -> None:
    """Verify and decrypt ``len(entries) // 32`` data nodes from ``ct`` into ``out``;
    ``entries`` are their ``key16 ‖ gmac16`` from the MHT node, ``first`` the number
    of the first (for the error).

    Raises:
        IntegrityError: naming the first node that does not verify (``out`` is then
            partly written and must not be used).
    """
    count = len(entries) // _ENTRY
    native = _native
    if native is not None:
        bad = native.open_nodes(entries, ct, out)
    else:
        cipher_in = [ct[j * NODE : (j + 1) * NODE] for j in range(count)]
        plain_out = [out[j * NODE : (j + 1) * NODE] for j in range(count)]
        bad = _open_round(entries, cipher_in, plain_out)
    if bad >= 0:
        raise IntegrityError(f"teaclave-file-128: data node {first + bad} does not verify")


def _decrypt_data(
    src: BinaryIO,
    dst: BinaryIO,
    base: int,
    root_key: bytes,
    root_gmac: bytes,
    size: int,
    counter: ByteCounter,
) -> None:
    """Verify and decrypt the data nodes in rounds of :func:`round_nodes` (within one MHT node).

    A round's plaintext is handed to the writer (:class:`OrderedWriter`: written on a
    helper thread while the next round is read and opened) only after all of its
    nodes verify.
    """
    n_data = data_count(size)
    remaining = size - MD_DATA_LENGTH
    path = _MhtPath(src, base, _open(root_key, root_gmac, _read_node(src, base, 1), "MHT node 0"))
    counter.add(NODE)
    native = _native
    batch = round_nodes()
    block_view = memoryview(bytearray(batch * NODE))
    cipher_in = [block_view[j * NODE : (j + 1) * NODE] for j in range(batch)]
    with OrderedWriter(dst, batch * NODE, threaded=native is not None) as writer:
        for m in range((n_data - 1) // DATA_PER_MHT + 1):
            mht = path.get(m)
            mht_view = memoryview(mht)
            if m:
                counter.add(NODE)
            group = m * DATA_PER_MHT
            group_end = min(group + DATA_PER_MHT, n_data)
            src.seek(base + data_physical(group) * NODE)
            for first in range(group, group_end, batch):
                count = min(batch, group_end - first)
                if read_full(src, block_view[: count * NODE]) != count * NODE:
                    raise IntegrityError("teaclave-file-128: file shrank while being read")
                entries = mht_view[(first - group) * _ENTRY : (first - group + count) * _ENTRY]
                plain = writer.acquire()
                span = count * NODE
                if native is not None:
                    bad = native.open_nodes(entries, block_view[:span], plain[:span])
                else:
                    plain_out = [plain[j * NODE : (j + 1) * NODE] for j in range(count)]
                    bad = _open_round(entries, cipher_in, plain_out)
                if bad >= 0:
                    raise IntegrityError(
                        f"teaclave-file-128: data node {first + bad} does not verify"
                    )
                take = min(count * NODE, remaining)
                writer.submit(plain, 0, take)
                remaining -= take
                counter.add(count * NODE)


def _open_round(
    entries: memoryview, cipher_in: list[memoryview], plain_out: list[memoryview]
) -> int:
    """The pure path of ``_pfs_native.open_nodes``: open ``len(entries) // 32`` nodes;
    return the index of the first that does not verify, or -1."""
    sealed = bytearray(NODE + _TAG)  # one node's ciphertext ‖ tag, as decrypt_into wants
    sealed_ct = memoryview(sealed)[:NODE]
    sealed_tag = memoryview(sealed)[NODE:]
    for j in range(len(entries) // _ENTRY):
        entry = j * _ENTRY
        sealed_ct[:] = cipher_in[j]
        sealed_tag[:] = entries[entry + 16 : entry + _ENTRY]
        try:
            AESGCM(entries[entry : entry + 16]).decrypt_into(ZERO_NONCE, sealed, None, plain_out[j])
        except (InvalidTag, ValueError):
            return j
    return -1


class _MhtPath:
    """Verified MHT nodes on the path from the root to the current one."""

    def __init__(self, src: BinaryIO, base: int, root: bytes) -> None:
        self._src = src
        self._base = base
        self._nodes: dict[int, bytes] = {0: root}

    def get(self, m: int) -> bytes:
        """Return MHT node ``m``'s plaintext, verified through its ancestors."""
        node = self._nodes.get(m)
        if node is None:
            parent_no, index = divmod(m - 1, CHILD_PER_MHT)
            parent = self.get(parent_no)
            at = _CHILD_OFFSET + index * _ENTRY
            ct = _read_node(self._src, self._base, mht_physical(m))
            node = _open(parent[at : at + 16], parent[at + 16 : at + 32], ct, f"MHT node {m}")
            self._nodes[m] = node
        keep = {0}
        k = m
        while k:
            keep.add(k)
            k = (k - 1) // CHILD_PER_MHT
        for stale in [k for k in self._nodes if k not in keep]:
            del self._nodes[stale]
        return node


def _read_node(src: BinaryIO, base: int, physical: int) -> bytes:
    src.seek(base + physical * NODE)
    node = read_exact(src, NODE)
    if len(node) != NODE:
        raise IntegrityError(f"teaclave-file-128: node {physical} is missing")
    return node


def _open(key: bytes, gmac: bytes, ct: bytes, what: str) -> bytes:
    try:
        return AESGCM(key).decrypt(ZERO_NONCE, ct + gmac, None)
    except (InvalidTag, ValueError) as e:
        raise IntegrityError(f"teaclave-file-128: {what} does not verify") from e


def cmac_of(src: BinaryIO, counter: ByteCounter) -> bytes:
    """Return the metadata gmac from the plain header (no key needed)."""
    header = read_exact(src, HEADER_LENGTH)
    counter.add(len(header))
    return parse_header(header).gmac


def _check_plain_size(size: int, limits: Limits) -> None:
    if size > limits.max_teaclave_file_bytes:
        raise CryptoLimitError(
            f"teaclave-file-128 plaintext exceeds {limits.max_teaclave_file_bytes} bytes"
        )


def _report(progress: Progress | None, n: int) -> None:
    if progress is not None and n:
        progress(n)
