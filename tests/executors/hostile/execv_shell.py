# expect: error seccomp
"""os.execv("/bin/sh"): execve(2) after start kills the process."""

import os


def entrypoint(argv):
    os.execv("/bin/sh", ["sh", "-c", "id"])
