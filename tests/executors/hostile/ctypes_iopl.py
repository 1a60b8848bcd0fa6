# expect: error seccomp
"""iopl(3): raw I/O port access: killed."""

import ctypes


def entrypoint(argv):
    libc = ctypes.CDLL(None, use_errno=True)
    return str(libc.syscall(172, 3))
