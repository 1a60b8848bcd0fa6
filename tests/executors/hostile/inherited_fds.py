# expect: result /dev/null /dev/null pipe pipe
"""Look for fds the sandbox was not meant to keep (worker sockets, the view's namespace,
the job socket, the setup or manifest memfds, lock files): only stdio and the frame pipe."""

import os


def entrypoint(argv):
    kinds = []
    for fd in sorted(int(n) for n in os.listdir("/proc/self/fd")):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the directory listing's own fd, closed again
        kinds.append(target.split(":")[0] if ":" in target else target)
    return " ".join(sorted(kinds))
