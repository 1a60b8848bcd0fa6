# expect: error crash
"""Blow the C stack (recursion limit lifted, recursion through a C builtin): SIGSEGV."""

import sys


class Deep:
    def __repr__(self):
        return repr(Deep())


def entrypoint(argv):
    sys.setrecursionlimit(10**9)
    return repr(Deep())
