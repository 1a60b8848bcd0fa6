# expect: result area:ENOENT data:ENOENT shm:ENOENT
# args: {"area": "$PRIVATE_AREA", "data": "$DATA_DIR"}
"""Read the worker's private staging area (other tasks' plaintext) and the data directory."""

import errno
import os


def entrypoint(argv):
    out = []
    for name, path in (("area", argv[1]), ("data", argv[2]), ("shm", "/dev/shm")):
        try:
            os.listdir(path)
            out.append(f"{name}:LISTED")
        except OSError as e:
            out.append(f"{name}:{errno.errorcode[e.errno]}")
    return " ".join(out)
