# expect: result PermissionError 1
"""memfd_create: anonymous files (a staging step for fileless execution): refused."""

import os


def entrypoint(argv):
    try:
        os.memfd_create("x")
    except OSError as e:
        return f"{type(e).__name__} {e.errno}"
    return "CREATED"
