# expect: error seccomp
"""Re-exec the interpreter (shedding the harness): execve(2) kills."""

import os
import sys


def entrypoint(argv):
    os.execv(sys.executable, [sys.executable, "-c", "print(1)"])
