# expect: error seccomp
# args: {"pid": "$NEIGHBOUR_PID"}
"""PTRACE_ATTACH to another sandbox's function process: ptrace(2) kills."""

import ctypes


def entrypoint(argv):
    libc = ctypes.CDLL(None, use_errno=True)
    return str(libc.syscall(101, 16, int(argv[1]), 0, 0))
