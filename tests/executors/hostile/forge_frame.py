# expect: error protocol
"""Write a garbage frame on the harness's result channel."""

import os
import sys


def entrypoint(argv):
    os.write(int(sys.argv[-1]), b"\x09\x00\x00\x00\x00")
    return "forged"
