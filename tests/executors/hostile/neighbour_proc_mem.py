# expect: result mem:ENOENT environ:ENOENT fd/0:ENOENT maps:ENOENT
# args: {"pid": "$NEIGHBOUR_PID"}
"""Read another sandbox's memory, environment, fds and maps through /proc/<pid>."""

import errno


def entrypoint(argv):
    out = []
    for leaf in ("mem", "environ", "fd/0", "maps"):
        try:
            open(f"/proc/{argv[1]}/{leaf}", "rb").read(16)
            out.append(f"{leaf}:READ")
        except OSError as e:
            out.append(f"{leaf}:{errno.errorcode[e.errno]}")
    return " ".join(out)
