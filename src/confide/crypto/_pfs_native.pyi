# Types of the optional C extension (src/confide/crypto/_pfs_native.c).
from typing import Final

_Bytes = bytes | bytearray | memoryview

MAX_NODES: Final[int]
NODE_SIZE: Final[int]
BACKEND: Final[str]

def seal_nodes(keys: _Bytes, plain: _Bytes, out: bytearray | memoryview,
               gmacs: bytearray | memoryview, /) -> None: ...
def open_nodes(entries: _Bytes, ct: _Bytes, out: bytearray | memoryview, /) -> int: ...
