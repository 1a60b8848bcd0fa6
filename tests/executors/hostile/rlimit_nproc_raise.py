# expect: result ValueError ValueError ValueError ValueError
"""Raise RLIMIT_NPROC, RLIMIT_NOFILE, RLIMIT_FSIZE, RLIMIT_CORE back up: refused."""

import resource


def entrypoint(argv):
    out = []
    for limit in (resource.RLIMIT_NPROC, resource.RLIMIT_NOFILE, resource.RLIMIT_FSIZE,
                  resource.RLIMIT_CORE):
        try:
            resource.setrlimit(limit, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            out.append("raised")
        except (ValueError, OSError) as e:
            out.append(type(e).__name__)
    return " ".join(out)
