# expect: result MESAPY_ERROR_BUFFER_TOO_SHORT
"""Return 50 MB: more than MesaPy's 20 480-byte result buffer."""


def entrypoint(argv):
    return "x" * (50 * 1024 * 1024)
