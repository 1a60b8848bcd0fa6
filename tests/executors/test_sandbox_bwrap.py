"""What the sandbox can see: the bubblewrap command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import confide
from confide.executors import _sandbox
from confide.executors import python as python_executor
from confide.executors._sandbox import SandboxUnavailable, discover
from confide.executors._sandbox._bwrap import HARNESS_PATH, SANDBOX_LIB, bwrap_argv

CONFIG = discover()
ARGV = bwrap_argv(CONFIG, tmp_bytes=1234, fds=[5, 6, 7])


def _pairs(flag: str) -> list[tuple[str, str]]:
    return [(ARGV[i + 1], ARGV[i + 2]) for i, a in enumerate(ARGV) if a == flag]


def test_sandbox_flags_isolate_every_namespace() -> None:
    for flag in ("--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
                 "--new-session", "--clearenv", "--as-pid-1"):  # fmt: skip
        assert flag in ARGV
    assert ARGV[ARGV.index("--cap-drop") + 1] == "ALL"
    assert "--share-net" not in ARGV
    assert ARGV[-5:] == [HARNESS_PATH, "run", "5", "6", "7"]
    assert ARGV[-9:-5] == [CONFIG.python, "-I", "-S", "-B"]


def test_a_pre_started_sandbox_gets_the_same_isolation() -> None:
    waiting = bwrap_argv(CONFIG, tmp_bytes=1234, fds=[5, 6], mode="wait")
    assert waiting[-4:] == [HARNESS_PATH, "wait", "5", "6"]
    assert waiting[:-5] == ARGV[:-6]  # every flag and mount identical; only the mode differs


def test_discover_names_numpy_as_the_package_to_pre_import() -> None:
    assert CONFIG.packages == ("numpy",)


def test_tmp_is_a_private_size_capped_tmpfs_and_root_is_read_only() -> None:
    i = ARGV.index("/tmp") - 3
    assert ARGV[i : i + 4] == ["--size", "1234", "--tmpfs", "/tmp"]
    assert ARGV[ARGV.index("--chdir") + 2 : ARGV.index("--chdir") + 4] == ["--remount-ro", "/"]
    assert "--bind" not in ARGV  # every bind is read-only


def test_binds_nothing_of_confide_home_or_etc_beyond_ld_cache() -> None:
    source = str(Path(confide.__file__).resolve().parent.parent)
    for src, dest in _pairs("--ro-bind"):
        assert not src.startswith(source) or src == CONFIG.harness, src
        assert not dest.startswith(("/home", "/work")), dest
        if dest.startswith("/etc"):
            assert dest == "/etc/ld.so.cache"
        if src.startswith("/root"):
            assert src.startswith(os.path.realpath(sys.base_prefix)), src


def test_site_packages_of_the_interpreter_are_hidden_and_only_numpy_is_mounted() -> None:
    dests = [d for _, d in _pairs("--ro-bind")]
    assert sorted(d for d in dests if d.startswith("/sandbox/lib/")) == [
        "/sandbox/lib/numpy",
        "/sandbox/lib/numpy.libs",
    ]
    for hidden in CONFIG.hidden:
        assert hidden.endswith(("site-packages", "dist-packages"))
        assert ["--tmpfs", hidden] == ARGV[ARGV.index(hidden) - 1 : ARGV.index(hidden) + 1]


def test_only_named_variables_cross_into_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFIDE_SECRET_KEY", "CANARY")
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)  # set on some CI machines
    argv = bwrap_argv(CONFIG, tmp_bytes=1, fds=[])
    names = [argv[i + 1] for i, a in enumerate(argv) if a == "--setenv"]
    assert sorted(names) == ["OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "PATH"]
    assert "CANARY" not in " ".join(argv)


def test_missing_package_makes_the_sandbox_unavailable() -> None:
    with pytest.raises(SandboxUnavailable):
        discover(packages=("numpy", "no_such_package_xyz"))


def test_onnx_runtime_is_mounted_only_when_the_worker_has_it() -> None:
    """The inference extra's ONNX Runtime is the one optional package (docs/inference.md)."""
    import importlib.util

    from confide.executors._sandbox._bwrap import OPTIONAL_PACKAGES

    assert OPTIONAL_PACKAGES == ("onnxruntime",)
    have = importlib.util.find_spec("onnxruntime") is not None
    assert _sandbox.installed_packages() == (("numpy", "onnxruntime") if have else ("numpy",))
    if have:
        config = python_executor.PythonExecutor().sandbox_config()
        assert config.packages == ("numpy", "onnxruntime")
        targets = [dst for _src, dst in config.ro_binds]
        assert f"{SANDBOX_LIB}/onnxruntime" in targets
        assert not any(dst.endswith(("sklearn", "skl2onnx", "onnx")) for dst in targets)


def test_public_names_are_pinned() -> None:
    assert _sandbox.__all__ == sorted(_sandbox.__all__)
    assert _sandbox.__all__ == [
        "Prestarted",
        "ProtocolViolation",
        "Result",
        "SandboxConfig",
        "SandboxFailure",
        "SandboxJob",
        "SandboxPool",
        "SandboxUnavailable",
        "address_space_bytes",
        "check_sandbox",
        "discover",
        "installed_packages",
        "run_sandbox",
    ]
    assert python_executor.__all__ == [
        "MESAPY_ERROR_BUFFER_TOO_SHORT",
        "MESAPY_EXEC_ERROR",
        "MESAPY_RESULT_LIMIT",
        "PythonExecutor",
        "with_traceback",
    ]


def test_dev_holds_only_null_zero_urandom_and_is_read_only() -> None:
    assert "--dev" not in ARGV  # bwrap's own /dev adds tty, pts, shm and a writable tmpfs
    i = ARGV.index("/dev") - 3
    assert ARGV[i : i + 4] == ["--size", "65536", "--tmpfs", "/dev"]
    devices = [ARGV[j + 1] for j, a in enumerate(ARGV) if a == "--dev-bind"]
    assert devices == ["/dev/null", "/dev/zero", "/dev/urandom"]
    assert ["--remount-ro", "/dev"] == ARGV[ARGV.index("/dev/urandom") + 2 :][:2]


def test_every_tmpfs_is_size_capped_and_only_tmp_stays_writable() -> None:
    tmpfs = [j for j, a in enumerate(ARGV) if a == "--tmpfs"]
    assert len(tmpfs) == len(CONFIG.hidden) + 2  # hidden dirs, /tmp, /dev
    read_only = {ARGV[j + 1] for j, a in enumerate(ARGV) if a == "--remount-ro"}
    for j in tmpfs:
        assert ARGV[j - 2] == "--size" and int(ARGV[j - 1]) > 0, ARGV[j - 2 : j + 2]
        assert ARGV[j + 1] in read_only or ARGV[j + 1] == "/tmp"


def test_proc_is_read_only() -> None:
    i = ARGV.index("--proc")
    assert ARGV[i : i + 4] == ["--proc", "/proc", "--remount-ro", "/proc"]


def test_a_view_replaces_every_bind_source_and_nothing_else() -> None:
    from confide.executors._sandbox._bwrap import bind_sources

    sources = bind_sources(CONFIG)
    view = [f"/run/{i}" for i in range(len(sources))]
    viewed = bwrap_argv(CONFIG, tmp_bytes=1234, fds=[5, 6, 7], sources=view)
    assert len(viewed) == len(ARGV)
    changed = [(a, b) for a, b in zip(ARGV, viewed, strict=True) if a != b]
    assert changed == list(zip(sources, view, strict=True))
    with pytest.raises(ValueError, match="one source path per bind"):
        bwrap_argv(CONFIG, tmp_bytes=1, fds=[], sources=view[:-1])
