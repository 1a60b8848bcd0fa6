# expect: error seccomp
"""open_tree(2) of / (the new mount API, to clone a mount and attach it elsewhere): killed."""

import ctypes


def entrypoint(argv):
    libc = ctypes.CDLL(None, use_errno=True)
    return str(libc.syscall(428, -100, b"/", 1))
