# expect: result panic:EROFS lease-break-time:EROFS core_pattern:EROFS sysrq-trigger:ENOENT
"""Write host-wide kernel knobs (/proc/sys, /proc/sysrq-trigger): /proc is read-only.

Under it, the files are root's and the sandbox runs as an unprivileged host uid:
the host-side test ``test_the_sandbox_uid_alone_cannot_write_sysctls`` checks that layer.
"""

import errno


def entrypoint(argv):
    out = []
    for name in ("sys/kernel/panic", "sys/fs/lease-break-time", "sys/kernel/core_pattern",
                 "sysrq-trigger"):
        try:
            with open(f"/proc/{name}", "w") as f:
                f.write("|/tmp/x\n" if name.endswith("core_pattern") else "1\n")
            result = "WRITTEN"
        except OSError as e:
            result = errno.errorcode[e.errno]
        out.append(f"{name.rpartition('/')[2]}:{result}")
    return " ".join(out)
