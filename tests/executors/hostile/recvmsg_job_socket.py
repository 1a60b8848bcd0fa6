# expect: result []
"""Receive more fds over the pre-started sandbox's job socket (or any fd): nothing can arrive.

The harness closes its job socket before the function runs and seccomp allows
recvmsg(2) only on that fd number; a cold sandbox may not recvmsg at all.
"""

import ctypes
import errno


def entrypoint(argv):
    libc = ctypes.CDLL(None, use_errno=True)
    msghdr = ctypes.create_string_buffer(64)  # no iovec, no control buffer
    receivable = []
    for fd in range(64):
        ret = libc.syscall(47, fd, ctypes.byref(msghdr), 0x40)  # recvmsg, MSG_DONTWAIT
        if ret >= 0 or ctypes.get_errno() == errno.EAGAIN:  # a socket it could read
            receivable.append(fd)
    return repr(receivable)
