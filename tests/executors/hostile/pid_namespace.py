# expect: result ['1']
"""List the processes the function can see: only itself."""

import os


def entrypoint(argv):
    return str(sorted(p for p in os.listdir("/proc") if p.isdigit()))
