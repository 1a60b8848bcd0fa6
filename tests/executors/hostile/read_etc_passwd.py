# expect: result FileNotFoundError
"""Read /etc/passwd: /etc holds only ld.so.cache."""


def entrypoint(argv):
    try:
        return open("/etc/passwd").read()
    except OSError as e:
        return type(e).__name__
