"""Frames from the sandbox are untrusted: the decoder and routers refuse bad ones."""

from __future__ import annotations

import io
import json
import struct
from typing import BinaryIO, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confide.config import Limits
from confide.executors import TaskIO
from confide.executors._caps import CappedTaskIO, LogCap
from confide.executors._sandbox import _harness as harness
from confide.executors._sandbox import _launch as launch
from confide.executors._sandbox import _protocol as proto
from confide.executors._sandbox._errors import ProtocolViolation, SandboxFailure
from confide.executors._sandbox._protocol import Create, LogLine
from confide.executors._sandbox._sinks import LogRouter, OutputRouter

W = proto.WRITE_HANDLE_BIT


def frame(kind: int, body: bytes) -> bytes:
    return struct.pack(">BI", kind, len(body)) + body


def test_harness_and_worker_agree_on_the_wire_format() -> None:
    pairs = [
        (harness.K_READY, proto.K_READY),
        (harness.K_LOG, proto.K_LOG),
        (harness.K_CREATE, proto.K_CREATE),
        (harness.K_WRITE, proto.K_WRITE),
        (harness.K_CLOSE, proto.K_CLOSE),
        (harness.K_RESULT, proto.K_RESULT),
        (harness.WRITE_HANDLE_BIT, proto.WRITE_HANDLE_BIT),
        (harness.MAX_HANDLES, proto.MAX_HANDLES),
    ]
    for ours, theirs in pairs:
        assert ours == theirs


def test_harness_and_worker_agree_on_the_job_socket_messages() -> None:
    assert harness.K_IDLE == launch.K_IDLE
    assert harness.K_JOB == launch.K_JOB
    assert harness._JOB_HEADER.unpack(launch.job_header(7)) == (launch.K_JOB, 7)


frames_strategy = st.lists(
    st.tuples(st.sampled_from(sorted(proto._KINDS)), st.binary(max_size=64)), max_size=8
)


@given(frames_strategy, st.lists(st.integers(min_value=1, max_value=50), min_size=1))
def test_decoder_yields_the_same_frames_however_bytes_are_split(
    frames: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    wire = b"".join(frame(k, b) for k, b in frames)
    decoder = proto.FrameDecoder(max_body=64)
    got: list[tuple[int, bytes]] = []
    pos, i = 0, 0
    while pos < len(wire):
        step = cuts[i % len(cuts)]
        got += [(f.kind, f.body) for f in decoder.feed(wire[pos : pos + step])]
        pos, i = pos + step, i + 1
    assert got == frames
    assert decoder.pending == 0


def test_rejects_unknown_frame_kind() -> None:
    with pytest.raises(ProtocolViolation):
        list(proto.FrameDecoder(16).feed(frame(9, b"")))


def test_rejects_frame_at_cap_plus_one_before_buffering_it() -> None:
    assert [f.body for f in proto.FrameDecoder(16).feed(frame(2, b"x" * 16))] == [b"x" * 16]
    with pytest.raises(ProtocolViolation):
        list(proto.FrameDecoder(16).feed(struct.pack(">BI", 2, 17)))


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1]", b'{"l": "INFO", "m": "x"}', b'{"l": "LOUD", "m": "x", "t": ""}',
     b'{"l": "INFO", "m": "a\\nb", "t": ""}', b'{"l": "INFO", "m": 5, "t": ""}', b"\xff"],
)  # fmt: skip
def test_rejects_malformed_log_frames(body: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        proto.parse_log(body)


def test_log_text_cannot_inject_extra_lines() -> None:
    line = proto.parse_log(json.dumps({"l": "INFO", "m": "f", "t": "a\n[ERROR x] fake"}).encode())
    assert "\n" not in line.text


@pytest.mark.parametrize("handle", [0, 5, W, W | 1024, W | 0x80000000 | 1, True, "1", 1.0])
def test_rejects_bad_output_handles(handle: object) -> None:
    with pytest.raises(ProtocolViolation):
        proto.parse_create(json.dumps({"h": handle, "n": "out"}).encode())


@pytest.mark.parametrize("body", [b'{"s": "ok"}', b'{"s": "won"}', b'{"s": "ok", "v": 1}'])
def test_rejects_malformed_results(body: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        proto.parse_result(body)


class Streams:
    def __init__(self) -> None:
        self.files: dict[str, io.BytesIO] = {}

    def create(self, name: str) -> BinaryIO:
        self.files[name] = io.BytesIO()
        self.files[name].close = lambda: None  # type: ignore[method-assign]
        return self.files[name]

    create_output = create


def router(streams: Streams, max_output: int = 10, max_total: int = 15) -> OutputRouter:
    """The router over streams capped as the worker caps them (apply_caps)."""
    limits = Limits(max_output_file_bytes=max_output, max_output_bytes=max_total)
    capped = CappedTaskIO(cast(TaskIO, streams), limits)
    return OutputRouter(capped.create_output, ["a", "b"])


def test_output_at_cap_is_accepted_and_cap_plus_one_refused() -> None:
    streams = Streams()
    out = router(streams)
    out.on_create(Create(W | 1, "a"))
    out.on_write(W | 1, b"x" * 10)
    assert streams.files["a"].getvalue() == b"x" * 10
    with pytest.raises(SandboxFailure) as info:
        out.on_write(W | 1, b"y")
    assert info.value.cause == "output"
    assert info.value.reason.endswith("(limits.max_output_file_bytes)")
    assert streams.files["a"].getvalue() == b"x" * 10  # the refused write left nothing


def test_total_output_cap_counts_recreated_files() -> None:
    out = router(Streams())
    out.on_create(Create(W | 1, "a"))
    out.on_write(W | 1, b"x" * 10)
    out.on_create(Create(W | 2, "a"))  # starts afresh, budget is not refunded
    out.on_write(W | 2, b"x" * 5)
    with pytest.raises(SandboxFailure) as info:
        out.on_write(W | 2, b"x")
    assert info.value.reason.endswith("(limits.max_output_bytes)")


@pytest.mark.parametrize(
    "action",
    [
        lambda r: r.on_create(Create(W | 1, "unassigned")),
        lambda r: r.on_write(W | 7, b"x"),
        lambda r: r.on_close(W | 7),
        lambda r: (r.on_create(Create(W | 1, "a")), r.on_create(Create(W | 1, "b"))),
        lambda r: (r.on_create(Create(W | 1, "a")), r.on_close(W | 1), r.on_write(W | 1, b"")),
    ],
    ids=["unassigned", "write-unopened", "close-unopened", "handle-reuse", "write-after-close"],
)
def test_forged_output_frames_are_violations(action: object) -> None:
    with pytest.raises(ProtocolViolation):
        action(router(Streams()))  # type: ignore[operator]


def test_log_router_formats_lines_and_fails_past_the_log_caps() -> None:
    lines: list[str] = []
    logs = LogRouter(LogCap(lines.append, Limits(max_log_lines=2)), max_line_chars=3)
    for text in ("abcdef", "x"):
        logs.on_line(LogLine("INFO", "m", text))
    assert lines == ["[INFO m] abc", "[INFO m] x"]
    with pytest.raises(SandboxFailure) as info:
        logs.on_line(LogLine("INFO", "m", "one too many"))
    assert (info.value.cause, lines[-1]) == ("log", "[INFO m] x")
    lines.clear()
    capped = LogCap(lines.append, Limits(max_log_bytes=len("[INFO m] x")))
    logs = LogRouter(capped, max_line_chars=9)
    logs.on_line(LogLine("INFO", "m", "x"))
    with pytest.raises(SandboxFailure) as info:
        logs.on_line(LogLine("INFO", "m", "y"))
    assert info.value.reason.endswith("(limits.max_log_bytes)")
    assert lines == ["[INFO m] x"]
