"""In-memory TaskIO for builtin tests."""

from __future__ import annotations

import io
from collections.abc import Collection
from typing import BinaryIO

from confide.invocation import InvalidInputName, InvalidOutputName


class _Output(io.BytesIO):
    def __init__(self, sink: dict[str, bytes], name: str) -> None:
        super().__init__()
        self._sink = sink
        self._name = name
        sink[name] = b""

    def close(self) -> None:
        if not self.closed:
            self._sink[self._name] = self.getvalue()
        super().close()


class MemoryTaskIO:
    """Inputs from a dict; outputs captured into ``self.outputs`` on close."""

    def __init__(
        self, inputs: dict[str, bytes] | None = None, outputs: Collection[str] = ()
    ) -> None:
        self.inputs = dict(inputs or {})
        self.allowed_outputs = set(outputs)
        self.outputs: dict[str, bytes] = {}
        self.opened: list[str] = []

    def input_names(self) -> Collection[str]:
        return set(self.inputs)

    def output_names(self) -> Collection[str]:
        return set(self.allowed_outputs)

    def open_input(self, name: str) -> BinaryIO:
        if name not in self.inputs:
            raise InvalidInputName(name)
        self.opened.append(name)
        return io.BytesIO(self.inputs[name])

    def create_output(self, name: str) -> BinaryIO:
        if name not in self.allowed_outputs:
            raise InvalidOutputName(name)
        return _Output(self.outputs, name)
