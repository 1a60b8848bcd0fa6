# expect: result /sys/fs/cgroup:ENOENT /proc/self/cgroup:0::/
"""Reach the cgroup tree (release_agent, moving into another cgroup): not mounted; the
sandbox's own cgroup namespace shows it at its root."""

import errno
import os


def entrypoint(argv):
    out = []
    try:
        os.listdir("/sys/fs/cgroup")
        out.append("/sys/fs/cgroup:LISTED")
    except OSError as e:
        out.append(f"/sys/fs/cgroup:{errno.errorcode[e.errno]}")
    out.append("/proc/self/cgroup:" + open("/proc/self/cgroup").read().splitlines()[-1])
    return " ".join(out)
