"""Writes of one transfer on a helper thread, in order, overlapping its crypto.

A large teaclave-file-128 transfer is three steps per round of nodes: read (or
receive), seal or open (the C extension, GIL released), write. On tmpfs the
write of new pages is the largest of the three, so :class:`OrderedWriter` does
the writes on one helper thread while the caller reads and runs the crypto of
the next round (docs/crypto.md has the numbers). Only the writes move: every
check stays on the caller, and a round is handed over only once it is complete
(opened rounds only after all of their nodes verified).

Writes move only when both sides can run at once: the caller's crypto releases
the GIL (``threaded``: the C extension; ``cryptography``'s per-node calls hold it,
and the pure path measured 20-45 % more CPU with a thread) and ``dst`` is an
operating-system file (``dst.fileno()`` answers; a write to memory would only
trade places with the caller). Otherwise, and for the first round (so a
one-round file starts no thread), writes are made at once.

Ownership of ``dst``: the caller until the second :meth:`OrderedWriter.submit`, the
helper from then until :meth:`~OrderedWriter.close` or
:meth:`~OrderedWriter.abandon` returns, the caller again afterwards. An
exception from ``dst`` (a full disk, the private area's cap) is raised unchanged
by the caller's next :meth:`~OrderedWriter.acquire`, ``submit`` or ``close``;
rounds submitted after it are not written.
"""

from __future__ import annotations

import io
import queue
import threading
from types import TracebackType
from typing import BinaryIO, Final

__all__ = ["THREAD_NAME", "OrderedWriter"]

#: The helper thread's name (what `ps -L` and the tests see).
THREAD_NAME: Final = "confide-writer"

#: Slots per transfer: one being filled, one being written, one ready (measured in a
#: standalone loop over 64 MiB: two slots 32-48 ms, three 25-31 ms).
SLOTS: Final = 3

_Job = tuple[memoryview, int, int, int | None]


class OrderedWriter:
    """Writes slots of ``slot_bytes`` to ``dst`` in the order they are submitted."""

    def __init__(
        self, dst: BinaryIO, slot_bytes: int, *, threaded: bool, slots: int = SLOTS
    ) -> None:
        self._dst = dst
        self._slot_bytes = slot_bytes
        self._spare = slots  # slots not yet allocated (allocated when first needed)
        self._free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._submitted = 0
        self._error: BaseException | None = None
        self._stop = False
        self._inline = not (threaded and _is_os_file(dst))

    def __enter__(self) -> OrderedWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abandon()

    def acquire(self) -> memoryview:
        """A free slot to fill (waits while every slot is queued for writing)."""
        self._raise_error()
        try:
            slot = self._free.get_nowait()
        except queue.Empty:
            if self._spare:
                self._spare -= 1
                return memoryview(bytearray(self._slot_bytes))
            slot = self._free.get()
        self._raise_error()
        return slot

    def submit(self, slot: memoryview, start: int, stop: int, offset: int | None = None) -> None:
        """Write ``slot[start:stop]`` (at ``offset`` when given, else where ``dst`` stands).

        ``slot`` came from :meth:`acquire` and must not be touched again until a
        later ``acquire`` returns it.
        """
        self._raise_error()
        if self._stop:  # abandoned: nothing more is written
            self._free.put(slot)
            return
        self._submitted += 1
        if self._submitted == 1 or self._inline:
            _write(self._dst, slot[start:stop], offset)
            self._free.put(slot)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
            self._thread.start()
        self._jobs.put((slot, start, stop, offset))

    def close(self) -> None:
        """Wait for every submitted write; raise the first one's exception, if any."""
        self._join()
        self._raise_error()

    def abandon(self) -> None:
        """Stop after the write in progress (the output is to be discarded); never raises.

        When it returns, nothing more is written to ``dst``.
        """
        self._stop = True
        self._join()

    def _join(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            if thread is not threading.current_thread():  # a finalizer may run on it
                thread.join()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            slot, start, stop, offset = job
            if self._error is None and not self._stop:
                try:
                    _write(self._dst, slot[start:stop], offset)
                except BaseException as e:  # noqa: BLE001 - handed to the caller, unchanged
                    self._error = e
            self._free.put(slot)


def _is_os_file(dst: BinaryIO) -> bool:
    try:
        dst.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):  # BytesIO raises the last
        return False
    return True


def _write(dst: BinaryIO, data: memoryview, offset: int | None) -> None:
    if offset is not None:
        dst.seek(offset)
    dst.write(data)
