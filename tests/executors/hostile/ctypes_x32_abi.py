# expect: error seccomp
"""socket(2) through the x32 ABI number (bit 30 set) to dodge a number-based filter: killed."""

import ctypes


def entrypoint(argv):
    libc = ctypes.CDLL(None, use_errno=True)
    return str(libc.syscall(0x40000000 + 41, 2, 1, 0))
