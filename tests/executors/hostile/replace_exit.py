# expect: result patched
"""Monkeypatch os._exit and leave a non-daemon thread running: the worker still ends the run."""

import os
import threading
import time


def entrypoint(argv):
    os._exit = lambda code: None
    threading.Thread(target=time.sleep, args=(3600,)).start()
    return "patched"
