"""Where the sandbox's file system comes from, and the bubblewrap command line.

:func:`discover` finds what CPython and the allowed packages need on this host
(read-only); :func:`bwrap_argv` turns that into a ``bwrap`` invocation. The
sandbox sees only: the interpreter binary and its shared library, the standard
library (its ``site-packages`` hidden), the system's multiarch library directory
and the dynamic loader, ``/etc/ld.so.cache``, the allowed packages (numpy) under
``/sandbox/lib``, the harness at ``/sandbox/harness.py``, a size-capped private
``/tmp``, its own read-only ``/proc`` and a read-only ``/dev`` holding only
``null``, ``zero`` and ``urandom``. Everything but ``/tmp`` is read-only.

bwrap runs as the sandbox's own unprivileged host uid (``_ids.py``); the bind
sources are given as paths that uid can reach (``_view.py``).
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ._errors import SandboxUnavailable

__all__ = [
    "DEVICES",
    "HARNESS_PATH",
    "SANDBOX_LIB",
    "SandboxConfig",
    "bind_sources",
    "bwrap_argv",
    "discover",
    "installed_packages",
]

HARNESS_PATH = "/sandbox/harness.py"
#: The only device nodes in the sandbox's /dev (binds of the host's, which the
#: sandbox's uid can read and write but not chmod: it does not own them).
DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom")
#: Size of the read-only tmpfs under /dev and of those hiding site-packages:
#: they hold only mount points, and nothing can be written to them.
_EMPTY_TMPFS_BYTES = 64 * 1024
SANDBOX_LIB = "/sandbox/lib"
_HARNESS_SOURCE = Path(__file__).with_name("_harness.py")
#: Host environment variables copied into the sandbox when set (OpenBLAS needs
#: them on some CPUs, see NOTES.md); nothing else of the worker's environment is.
PASSTHROUGH_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
#: Packages every Python sandbox gets.
REQUIRED_PACKAGES = ("numpy",)
#: Packages mounted (and pre-imported) only when the worker has them installed:
#: ONNX Runtime, from the ``inference`` extra (docs/inference.md). It imports
#: nothing but numpy and the standard library, and its threads and memory are
#: held by the same rlimits as any function's.
OPTIONAL_PACKAGES = ("onnxruntime",)


@dataclass(frozen=True)
class SandboxConfig:
    """Host paths the sandbox is built from. Use :func:`discover`.

    Attributes:
        bwrap: absolute path of the ``bwrap`` binary.
        python: absolute path of the interpreter binary run inside.
        ro_binds: ``(host path, sandbox path)`` pairs bound read-only.
        hidden: sandbox paths covered by an empty tmpfs (e.g. site-packages).
        symlinks: ``(target, sandbox path)`` symlinks (``/lib -> usr/lib``).
        harness: host path of the harness source file.
        blas_threads: thread count given to OpenBLAS/OpenMP inside.
        packages: the allowed packages mounted under ``/sandbox/lib``; a
            pre-started sandbox imports them before it waits for its job.
    """

    bwrap: str
    python: str
    ro_binds: tuple[tuple[str, str], ...]
    hidden: tuple[str, ...]
    symlinks: tuple[tuple[str, str], ...]
    harness: str
    blas_threads: int
    packages: tuple[str, ...] = ()


def _existing(path: str | None) -> str | None:
    return path if path and os.path.exists(path) else None


def discover(
    packages: Sequence[str] = ("numpy",), *, blas_threads: int | None = None
) -> SandboxConfig:
    """Find the host paths for a CPython + ``packages`` sandbox.

    Raises:
        SandboxUnavailable: no ``bwrap``, not x86_64 Linux, or a package is missing.
    """
    if sys.platform != "linux" or platform.machine() != "x86_64":
        raise SandboxUnavailable("needs Linux on x86_64 for the seccomp policy")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bwrap not found; install the bubblewrap package")
    python = os.path.realpath(sys.executable)
    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
    binds: list[tuple[str, str]] = [(python, python), (stdlib, stdlib)]
    libdir = sysconfig.get_config_var("LIBDIR")
    soname = sysconfig.get_config_var("INSTSONAME")
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and libdir and soname:
        libpython = _existing(os.path.join(libdir, soname))
        if libpython:
            binds.append((os.path.realpath(libpython), os.path.join(libdir, soname)))
    multiarch = sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"
    for sysdir in (f"/usr/lib/{multiarch}", "/usr/lib64"):
        if os.path.isdir(sysdir):
            binds.append((sysdir, sysdir))
    if os.path.exists("/etc/ld.so.cache"):
        binds.append(("/etc/ld.so.cache", "/etc/ld.so.cache"))
    for package in packages:
        found = _find_package(package)
        binds.append((found, f"{SANDBOX_LIB}/{package}"))
        libs = _existing(f"{found}.libs")  # auditwheel-vendored shared libraries
        if libs:
            binds.append((libs, f"{SANDBOX_LIB}/{package}.libs"))
    hidden = tuple(
        p
        for p in (os.path.join(stdlib, "site-packages"), os.path.join(stdlib, "dist-packages"))
        if os.path.isdir(p)
    )
    symlinks = (("usr/lib", "/lib"), ("usr/lib64", "/lib64"))
    threads = blas_threads if blas_threads is not None else min(os.cpu_count() or 1, 4)
    return SandboxConfig(
        bwrap=bwrap,
        python=python,
        ro_binds=tuple(binds),
        hidden=hidden,
        symlinks=symlinks,
        harness=str(_HARNESS_SOURCE),
        blas_threads=threads,
        packages=tuple(packages),
    )


def installed_packages() -> tuple[str, ...]:
    """The packages a worker's sandboxes get: numpy, plus each optional one installed."""
    optional = []
    for name in OPTIONAL_PACKAGES:
        try:
            _find_package(name)
        except SandboxUnavailable:
            continue
        optional.append(name)
    return (*REQUIRED_PACKAGES, *optional)


def _find_package(name: str) -> str:
    for entry in sys.path:
        candidate = os.path.join(entry, name)
        if entry and os.path.isfile(os.path.join(candidate, "__init__.py")):
            return os.path.realpath(candidate)
    raise SandboxUnavailable(f"package {name!r} not found on the worker")


def bind_sources(config: SandboxConfig) -> tuple[str, ...]:
    """The host paths :func:`bwrap_argv` binds, in the order it binds them."""
    return (*(src for src, _ in config.ro_binds), config.harness)


def bwrap_argv(
    config: SandboxConfig,
    *,
    tmp_bytes: int,
    fds: Sequence[int],
    mode: str = "run",
    sources: Sequence[str] | None = None,
) -> list[str]:
    """The full ``bwrap`` command that runs the harness: ``harness.py MODE FD...``.

    ``mode`` is ``run`` (a cold sandbox, ``fds`` are the job's) or ``wait`` (a
    pre-started sandbox, ``fds`` are its setup and its job socket).
    ``sources``: where bwrap finds each of :func:`bind_sources` (a view of them
    its uid can reach); by default the host paths themselves.
    """
    binds = bind_sources(config)
    where = tuple(sources) if sources is not None else binds
    if len(where) != len(binds):
        raise ValueError("one source path per bind is needed")
    argv = [
        config.bwrap,
        "--unshare-all",  # user, ipc, pid, net, uts, cgroup namespaces
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--as-pid-1",  # no bwrap monitor in the sandbox whose memory the function could write
        "--new-session",
        "--cap-drop", "ALL",
        "--uid", "65534",
        "--gid", "65534",
        "--hostname", "sandbox",
        "--clearenv",
        "--setenv", "PATH", "/nonexistent",
        "--setenv", "OPENBLAS_NUM_THREADS", str(config.blas_threads),
        "--setenv", "OMP_NUM_THREADS", str(config.blas_threads),
    ]  # fmt: skip
    for name in PASSTHROUGH_ENV:
        value = os.environ.get(name)
        if value is not None:
            argv += ["--setenv", name, value]
    for src, (_, dest) in zip(where[:-1], config.ro_binds, strict=True):
        argv += ["--ro-bind", src, dest]
    for target, link in config.symlinks:
        argv += ["--symlink", target, link]
    for path in config.hidden:
        argv += ["--size", str(_EMPTY_TMPFS_BYTES), "--tmpfs", path, "--remount-ro", path]
    argv += ["--ro-bind", where[-1], HARNESS_PATH]
    argv += ["--size", str(tmp_bytes), "--tmpfs", "/tmp"]  # noqa: S108 - the sandbox's own tmpfs
    argv += ["--proc", "/proc", "--remount-ro", "/proc"]
    argv += ["--size", str(_EMPTY_TMPFS_BYTES), "--tmpfs", "/dev"]
    for device in DEVICES:
        argv += ["--dev-bind", device, device]
    argv += ["--remount-ro", "/dev", "--chdir", "/tmp", "--remount-ro", "/"]  # noqa: S108
    argv += [config.python, "-I", "-S", "-B", HARNESS_PATH, mode, *(str(fd) for fd in fds)]
    return argv
