# expect: result -1 1
"""Call socket(2) directly through ctypes, bypassing the socket module."""

import ctypes


def entrypoint(argv):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(41, 2, 1, 0)
    return f"{fd} {ctypes.get_errno()}"
