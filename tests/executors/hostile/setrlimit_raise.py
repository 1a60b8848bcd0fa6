# expect: result ValueError ValueError 532676608
"""Raise RLIMIT_AS and RLIMIT_CPU back to unlimited: prlimit64 writes are refused.

RLIMIT_AS is the 512 MiB memory budget less the 4 MiB /tmp tmpfs of the test limits.
"""

import resource


def entrypoint(argv):
    out = []
    for limit in (resource.RLIMIT_AS, resource.RLIMIT_CPU):
        try:
            resource.setrlimit(limit, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            out.append("raised")
        except (ValueError, OSError) as e:
            out.append(type(e).__name__)
    out.append(str(resource.getrlimit(resource.RLIMIT_AS)[0]))
    return " ".join(out)
