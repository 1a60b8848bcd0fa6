# expect: result MESAPY_EXEC_ERROR
"""Unbounded recursion: RecursionError, an ordinary function exception."""


def entrypoint(argv):
    def down(n):
        return down(n + 1) + 1

    return str(down(0))
