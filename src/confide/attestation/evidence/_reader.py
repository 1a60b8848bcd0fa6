"""A bounds-checked little-endian reader for untrusted evidence bytes."""

from __future__ import annotations

from .._errors import EvidenceFormatError

__all__ = ["Reader"]


class Reader:
    """Consume fields from ``data`` in order; any overrun raises.

    Args:
        data: the untrusted bytes.
        what: name of the structure, used in error messages.
    """

    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._pos = 0
        self._what = what

    @property
    def offset(self) -> int:
        """Bytes consumed so far: the offset of the next field."""
        return self._pos

    @property
    def remaining(self) -> int:
        """Bytes not consumed yet."""
        return len(self._data) - self._pos

    def take(self, n: int, field: str) -> bytes:
        """Return the next ``n`` bytes."""
        if n < 0 or self._pos + n > len(self._data):
            raise EvidenceFormatError(
                f"{self._what}: truncated at {field} (need {n} bytes at offset {self._pos}, "
                f"have {len(self._data) - self._pos})"
            )
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def u16(self, field: str) -> int:
        """Next little-endian uint16."""
        return int.from_bytes(self.take(2, field), "little")

    def u32(self, field: str) -> int:
        """Next little-endian uint32."""
        return int.from_bytes(self.take(4, field), "little")

    def u64(self, field: str) -> int:
        """Next little-endian uint64."""
        return int.from_bytes(self.take(8, field), "little")

    def end(self) -> None:
        """Require that everything was consumed."""
        if self.remaining:
            raise EvidenceFormatError(f"{self._what}: {self.remaining} trailing bytes")
