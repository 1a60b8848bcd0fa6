# expect: error protocol
"""Announce a 4 GiB frame to make the worker buffer it."""

import os


def _channel_fd():
    # The harness shares the process: its frame channel is one attribute away.
    return teaclave_open.__self__.channel.fd  # noqa: F821 - a sandbox builtin


def entrypoint(argv):
    os.write(_channel_fd(), b"\x02\xff\xff\xff\xff")
    return "forged"
