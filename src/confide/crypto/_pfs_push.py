"""``teaclave-file-128`` verified and decrypted as its bytes arrive, in file order.

The protected-FS layout needs no random access to be read once from start to
end: node 0 (metadata) comes first, then every MHT node directly followed by
its up to 96 data nodes, and an MHT node's parent (``(m - 1) // 32``) always
comes before it. So the receiver takes one *group* at a time -- an MHT node
and its data nodes, at most 97 nodes of 4 KiB -- verifies the MHT node with the entry
its parent left, keeps the entries of its children (32 bytes per MHT node
still to come: at most 1.4 MiB for a 16 GiB file), and verifies and decrypts
the data nodes in one round (:func:`._pfs.open_data_nodes`), in place in the
buffer they arrived in. A group's plaintext is handed to the writer only after
all of its nodes verify; the writer (:class:`._writer.OrderedWriter`) writes it,
on a helper thread with the C extension, while the next group arrives. As for
the other push decryptors, the output is trustworthy only once :meth:`finish`
returned; :meth:`close` stops the writer when the transfer is given up.
"""

from __future__ import annotations

import weakref
from typing import BinaryIO, Final

from ..config import Limits
from ._errors import IntegrityError
from ._io import ByteCounter, Decryptor
from ._pfs import crypto_releases_gil, open_data_nodes, open_metadata, open_mht
from ._pfs_layout import (
    CHILD_PER_MHT,
    DATA_PER_MHT,
    MD_DATA_LENGTH,
    NODE,
    data_count,
)
from ._writer import OrderedWriter

__all__ = ["PfsDecryptor"]

_ENTRY: Final = 32  # key16 ‖ gmac16
_CHILD_OFFSET: Final = DATA_PER_MHT * _ENTRY  # 3072: where an MHT node's child entries start
_GROUP: Final = 1 + DATA_PER_MHT  # an MHT node and its data nodes


class PfsDecryptor(Decryptor):
    """Push-style reader of one ``teaclave-file-128`` file (``new_decryptor``)."""

    def __init__(
        self,
        key: bytes,
        dst: BinaryIO,
        *,
        file_name: str,
        expected_cmac: bytes | None,
        counter: ByteCounter,
        limits: Limits,
        write_behind: bool = True,
    ) -> None:
        self._key = key
        self._dst = dst
        self._file_name = file_name
        self._expected_cmac = expected_cmac
        self._counter = counter
        self._limits = limits
        threaded = write_behind and crypto_releases_gil()
        self._writer = OrderedWriter(dst, _GROUP * NODE, threaded=threaded)
        weakref.finalize(self, self._writer.abandon)  # no thread outlives a dropped decryptor
        self._view = self._writer.acquire()  # the group being received
        self._fill = 0
        self._want = NODE  # bytes of the unit being received: node 0 first
        self._cmac: bytes | None = None
        self._n_data = 0
        self._remaining = 0  # plaintext bytes still to write
        self._m = 0  # the MHT node whose group is being received
        self._entries = bytearray()  # MHT node m's key ‖ gmac at 32 m, from its parent
        self._done = False

    def get_buffer(self) -> memoryview:
        if self._done:
            return self._view[:NODE]  # anything received now is past the end
        return self._view[self._fill : self._want]

    def buffer_updated(self, n: int) -> None:
        if n <= 0:
            return
        if self._done:
            raise IntegrityError("teaclave-file-128: file is longer than its size field says")
        self._counter.add(n)
        self._fill += n
        if self._fill < self._want:
            return
        if self._cmac is None:
            self._open_node0()
        else:
            self._open_group()
        self._fill = 0

    def _open_node0(self) -> None:
        header, meta = open_metadata(
            self._key, self._view[:NODE], self._file_name, self._expected_cmac, self._limits
        )
        self._cmac = header.gmac
        self._dst.write(meta.data[: min(meta.size, MD_DATA_LENGTH)])
        self._n_data = data_count(meta.size)
        if not self._n_data:
            self._done = True
            return
        self._remaining = meta.size - MD_DATA_LENGTH
        n_mht = (self._n_data - 1) // DATA_PER_MHT + 1
        self._entries = bytearray(_ENTRY * n_mht)
        self._entries[:_ENTRY] = meta.mht_key + meta.mht_gmac
        self._want = self._group_bytes()

    def _group_bytes(self) -> int:
        return (1 + min(DATA_PER_MHT, self._n_data - self._m * DATA_PER_MHT)) * NODE

    def _open_group(self) -> None:
        m = self._m
        at = m * _ENTRY
        entry = bytes(self._entries[at : at + _ENTRY])
        mht = open_mht(entry[:16], entry[16:], self._view[:NODE], m)
        first_child = CHILD_PER_MHT * m + 1
        children = max(0, min(CHILD_PER_MHT, len(self._entries) // _ENTRY - first_child))
        if children:
            start = first_child * _ENTRY
            self._entries[start : start + children * _ENTRY] = mht[
                _CHILD_OFFSET : _CHILD_OFFSET + children * _ENTRY
            ]
        count = self._want // NODE - 1
        group = self._view
        open_data_nodes(
            memoryview(mht)[: count * _ENTRY],
            group[NODE : self._want],
            group[NODE : self._want],  # in place
            m * DATA_PER_MHT,
        )
        take = min(count * NODE, self._remaining)
        self._writer.submit(group, NODE, NODE + take)
        self._remaining -= take
        self._m += 1
        if self._m * DATA_PER_MHT >= self._n_data:
            self._done = True
            # a failed write is raised here, while the bytes arrive; once every write is
            # done, the last group's buffer takes (and refuses) anything past the end
            self._writer.close()
        else:
            self._view = self._writer.acquire()
            self._want = self._group_bytes()

    def finish(self) -> bytes:
        if not self._done:
            self._writer.abandon()
        if self._cmac is None:
            raise IntegrityError(
                f"teaclave-file-128: file length {self._fill} is not a positive multiple of {NODE}"
                if self._fill
                else "teaclave-file-128: file is shorter than its header"
            )
        if not self._done:
            raise IntegrityError(
                f"teaclave-file-128: file is truncated (it ends in MHT node {self._m}'s group)"
            )
        return self._cmac

    def close(self) -> None:
        self._writer.abandon()
