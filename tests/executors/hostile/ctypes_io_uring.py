# expect: error seccomp
"""io_uring_setup(2): a second syscall interface seccomp cannot see into."""

import ctypes


def entrypoint(argv):
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)
    return str(libc.syscall(425, 8, params))
