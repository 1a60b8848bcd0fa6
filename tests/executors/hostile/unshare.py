# expect: error seccomp
"""unshare(CLONE_NEWUSER): killed."""

import ctypes


def entrypoint(argv):
    libc = ctypes.CDLL(None, use_errno=True)
    return str(libc.unshare(0x10000000))
