# expect: result 0 PermissionError 1
"""kill(getppid(), SIGKILL): the parent is outside the pid namespace and kill(2) is refused."""

import os
import signal


def entrypoint(argv):
    ppid = os.getppid()
    try:
        os.kill(ppid, signal.SIGKILL)
    except OSError as e:
        return f"{ppid} {type(e).__name__} {e.errno}"
    return f"{ppid} sent"
