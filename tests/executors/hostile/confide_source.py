# expect: result FileNotFoundError FileNotFoundError ModuleNotFoundError
# args: {"data": "$DATA_DIR", "src": "$CONFIDE_SRC"}
"""Read confide's source and data directories, and import confide."""


def entrypoint(argv):
    import os

    out = []
    for path in (argv[1], argv[3]):
        try:
            os.listdir(path)
            out.append("listed")
        except OSError as e:
            out.append(type(e).__name__)
    try:
        import confide  # noqa: F401

        out.append("imported")
    except ImportError as e:
        out.append(type(e).__name__)
    return " ".join(out)
