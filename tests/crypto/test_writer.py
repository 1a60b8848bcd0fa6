"""``OrderedWriter``: a transfer's writes on one helper thread, in order, its
failures raised to the caller unchanged, nothing written once it is given up."""

from __future__ import annotations

import errno
import io
import os
import threading
import time
from pathlib import Path

import pytest

from confide.crypto._writer import THREAD_NAME, OrderedWriter

from .conftest import writer_threads

SLOT = 64


class _Recorder(io.FileIO):
    """A file (an OS file: the writer uses its thread) that notes which thread wrote
    what, and can fail or stall."""

    def __init__(self, path: Path, *, fail_at: int = 0, stall_s: float = 0.0) -> None:
        super().__init__(path, "w+")
        self.writers: list[str] = []
        self._fail_at = fail_at
        self._stall_s = stall_s

    def write(self, data: object) -> int:
        self.writers.append(threading.current_thread().name)
        if len(self.writers) == self._fail_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        time.sleep(self._stall_s)
        return super().write(data)  # type: ignore[arg-type]

    def getvalue(self) -> bytes:
        return os.pread(self.fileno(), 1 << 20, 0)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"



def _fill(writer: OrderedWriter, value: int) -> memoryview:
    slot = writer.acquire()
    slot[:] = bytes([value]) * SLOT
    return slot


def test_rounds_land_at_their_offsets_written_by_the_helper(out: Path) -> None:
    dst = _Recorder(out)
    order = [3, 0, 7, 1, 6, 2, 5, 4]  # offsets out of order: each write seeks
    with OrderedWriter(dst, SLOT, threaded=True) as writer:
        for k in order:
            writer.submit(_fill(writer, k), 0, SLOT, k * SLOT)
    assert dst.getvalue() == b"".join(bytes([k]) * SLOT for k in range(8))
    assert dst.writers[0] == threading.current_thread().name  # the first: no thread yet
    assert set(dst.writers[1:]) == {THREAD_NAME}
    assert writer_threads() == []


def test_a_one_round_transfer_starts_no_thread(out: Path) -> None:
    dst = _Recorder(out)
    with OrderedWriter(dst, SLOT, threaded=True) as writer:
        writer.submit(_fill(writer, 9), 0, 10)
        assert writer_threads() == []
    assert dst.getvalue() == bytes([9]) * 10


def test_appends_where_the_destination_stands_without_an_offset(out: Path) -> None:
    dst = _Recorder(out)
    dst.write(b"head")
    with OrderedWriter(dst, SLOT, threaded=True) as writer:
        for k in range(5):
            writer.submit(_fill(writer, k), 0, 3)
    assert dst.getvalue() == b"head" + b"".join(bytes([k]) * 3 for k in range(5))


def test_a_failed_write_is_raised_unchanged_and_nothing_after_it_is_written(out: Path) -> None:
    dst = _Recorder(out, fail_at=3)
    writer = OrderedWriter(dst, SLOT, threaded=True)
    with pytest.raises(OSError) as info:
        with writer:
            for k in range(50):
                writer.submit(_fill(writer, k), 0, SLOT)
    assert info.value.errno == errno.ENOSPC
    assert len(dst.writers) == 3  # the failing write was the last one tried
    assert dst.getvalue() == bytes([0]) * SLOT + bytes([1]) * SLOT
    assert writer_threads() == []


def test_close_raises_a_failure_of_the_last_writes(out: Path) -> None:
    dst = _Recorder(out, fail_at=4)
    writer = OrderedWriter(dst, SLOT, threaded=True)
    for k in range(4):
        writer.submit(_fill(writer, k), 0, SLOT)
    with pytest.raises(OSError, match="No space left"):
        writer.close()


def test_nothing_is_written_once_abandon_returns(out: Path) -> None:
    dst = _Recorder(out, stall_s=0.05)
    writer = OrderedWriter(dst, SLOT, threaded=True)
    for k in range(3):  # the first inline, two queued behind a slow write
        writer.submit(_fill(writer, k), 0, SLOT)
    writer.abandon()
    written = len(dst.writers)
    time.sleep(0.2)
    assert len(dst.writers) == written <= 2
    assert writer_threads() == []


def test_nothing_submitted_after_abandon_is_written(out: Path) -> None:
    dst = _Recorder(out)
    writer = OrderedWriter(dst, SLOT, threaded=True)
    writer.abandon()
    writer.submit(_fill(writer, 1), 0, SLOT)
    writer.close()
    assert dst.writers == []


def test_an_exception_in_the_caller_abandons_the_writes(out: Path) -> None:
    dst = _Recorder(out, stall_s=0.05)
    writer = OrderedWriter(dst, SLOT, threaded=True)
    with pytest.raises(ValueError, match="integrity"), writer:
        for k in range(3):
            writer.submit(_fill(writer, k), 0, SLOT)
        raise ValueError("integrity")
    assert len(dst.writers) <= 2
    assert writer_threads() == []


def test_at_most_three_slots_are_ever_allocated(out: Path) -> None:
    dst = _Recorder(out, stall_s=0.01)
    seen: set[int] = set()
    with OrderedWriter(dst, SLOT, threaded=True) as writer:
        for k in range(12):
            slot = _fill(writer, k)
            seen.add(id(slot.obj))
            writer.submit(slot, 0, SLOT)
    assert len(seen) == 3


def test_writes_to_memory_stay_on_the_caller() -> None:
    dst = io.BytesIO()  # a write to memory holds the GIL: a thread would only trade places
    with OrderedWriter(dst, SLOT, threaded=True) as writer:
        for k in range(5):
            writer.submit(_fill(writer, k), 0, SLOT)
            assert writer_threads() == []
    assert dst.getvalue() == b"".join(bytes([k]) * SLOT for k in range(5))


def test_writes_stay_on_the_caller_when_its_crypto_holds_the_gil(out: Path) -> None:
    dst = _Recorder(out)
    with OrderedWriter(dst, SLOT, threaded=False) as writer:
        for k in range(5):
            writer.submit(_fill(writer, k), 0, SLOT)
    assert set(dst.writers) == {threading.current_thread().name}
