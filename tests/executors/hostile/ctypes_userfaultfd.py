# expect: error seccomp
"""userfaultfd(2): a tool for widening kernel race windows: killed."""

import ctypes


def entrypoint(argv):
    libc = ctypes.CDLL(None, use_errno=True)
    return str(libc.syscall(323, 0))
