# expect: error protocol
# outputs: out
"""Forge a CREATE frame for an output that is not assigned to the task."""

import os
import struct


def _channel_fd():
    # The harness shares the process: its frame channel is one attribute away.
    return teaclave_open.__self__.channel.fd  # noqa: F821 - a sandbox builtin


def entrypoint(argv):
    body = b'{"h": 1073741900, "n": "someone_elses_output"}'
    os.write(_channel_fd(), struct.pack(">BI", 3, len(body)) + body)
    return "forged"
