# expect: result map=65534 65534 1 eff=0 prm=0 inh=0 amb=0 ids=65534/65534 groups=[]
"""What the function is: an unprivileged uid with no capabilities at all.

From the host side, ``test_python_host_isolation.py`` checks that the same process
runs as a host uid of its own (neither root nor the worker's).
"""

import os


def entrypoint(argv):
    uid_map = " ".join(open("/proc/self/uid_map").read().split())
    caps = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        caps[key] = value.strip()
    capabilities = " ".join(f"{k[3:].lower()}={int(caps[k], 16)}"
                            for k in ("CapEff", "CapPrm", "CapInh", "CapAmb"))
    return f"map={uid_map} {capabilities} ids={os.getuid()}/{os.getgid()} groups={os.getgroups()}"
