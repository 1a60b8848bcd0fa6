# expect: result kill:EPERM kill0:EPERM proc:ENOENT
# args: {"pid": "$NEIGHBOUR_PID"}
"""Signal another sandbox's function process by its host pid: seccomp refuses kill(2), the
pid namespace does not hold it, and (host-side test) its host uid is not ours."""

import errno
import os
import signal


def entrypoint(argv):
    pid = int(argv[1])
    out = []
    for name, sig in (("kill", signal.SIGKILL), ("kill0", 0)):
        try:
            os.kill(pid, sig)
            out.append(f"{name}:SENT")
        except OSError as e:
            out.append(f"{name}:{errno.errorcode[e.errno]}")
    try:
        os.stat(f"/proc/{pid}")
        out.append("proc:VISIBLE")
    except OSError as e:
        out.append(f"proc:{errno.errorcode[e.errno]}")
    return " ".join(out)
