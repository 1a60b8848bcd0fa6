# expect: result EPERM EPERM
"""Raise the CPU priority (nice -20, SCHED_FIFO) to starve the worker: refused."""

import errno
import os


def entrypoint(argv):
    out = []
    for call in (lambda: os.setpriority(os.PRIO_PROCESS, 0, -20),
                 lambda: os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))):
        try:
            call()
            out.append("DONE")
        except OSError as e:
            out.append(errno.errorcode[e.errno])
    return " ".join(out)
