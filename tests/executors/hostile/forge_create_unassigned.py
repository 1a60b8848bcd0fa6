# expect: error protocol
# outputs: out
"""Forge a CREATE frame for an output that is not assigned to the task."""

import os
import struct
import sys


def entrypoint(argv):
    body = b'{"h": 1073741900, "n": "someone_elses_output"}'
    os.write(int(sys.argv[-1]), struct.pack(">BI", 3, len(body)) + body)
    return "forged"
