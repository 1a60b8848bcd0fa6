# expect: error protocol
"""Announce a 4 GiB frame to make the worker buffer it."""

import os
import sys


def entrypoint(argv):
    os.write(int(sys.argv[-1]), b"\x02\xff\xff\xff\xff")
    return "forged"
