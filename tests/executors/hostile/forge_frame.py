# expect: error protocol
"""Write a garbage frame on the harness's result channel."""

import os


def _channel_fd():
    # The harness shares the process: its frame channel is one attribute away.
    return teaclave_open.__self__.channel.fd  # noqa: F821 - a sandbox builtin


def entrypoint(argv):
    os.write(_channel_fd(), b"\x09\x00\x00\x00\x00")
    return "forged"
