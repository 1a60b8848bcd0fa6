# expect: error crash
"""Dereference NULL through ctypes: the crash is contained."""

import ctypes


def entrypoint(argv):
    return str(ctypes.string_at(0))
