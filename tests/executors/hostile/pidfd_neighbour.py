# expect: result pidfd_open:EPERM pidfd_send_signal:EPERM
# args: {"pid": "$NEIGHBOUR_PID"}
"""pidfd_open / pidfd_send_signal on another sandbox's host pid: refused."""

import ctypes
import errno


def entrypoint(argv):
    libc = ctypes.CDLL(None, use_errno=True)
    out = []
    for name, nr, args in (("pidfd_open", 434, (int(argv[1]), 0)),
                           ("pidfd_send_signal", 424, (3, 9, 0, 0))):
        ctypes.set_errno(0)
        libc.syscall(nr, *args)
        out.append(f"{name}:{errno.errorcode.get(ctypes.get_errno(), 'OK')}")
    return " ".join(out)
