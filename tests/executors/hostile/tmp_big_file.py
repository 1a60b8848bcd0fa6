# expect: result OSError 27
# limits: python_tmp_bytes=8388608
"""Grow one /tmp file past RLIMIT_FSIZE (EFBIG, Python ignores SIGXFSZ)."""


def entrypoint(argv):
    block = b"x" * (256 * 1024)
    try:
        with open("/tmp/big", "wb") as f:
            for _ in range(100):
                f.write(block)
                f.flush()
    except OSError as e:
        return f"{type(e).__name__} {e.errno}"
    return "grown"
