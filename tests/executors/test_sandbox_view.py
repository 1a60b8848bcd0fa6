"""The view: sources an unprivileged uid cannot reach, bound read-only in a private namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from confide.executors._sandbox import discover
from confide.executors._sandbox._bwrap import bind_sources
from confide.executors._sandbox._launch import runtime_view
from confide.executors._sandbox._view import make_view, world_reachable


@pytest.fixture
def public_tmp() -> Iterator[Path]:
    """A directory every uid can search (pytest's own tmp root is private to root)."""
    path = Path(tempfile.mkdtemp(dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_a_path_under_a_directory_others_cannot_search_is_not_reachable(public_tmp: Path) -> None:
    private = public_tmp / "private"
    (private / "lib").mkdir(parents=True)
    (private / "lib" / "mod.py").write_text("x = 1\n")
    (private / "lib" / "mod.py").chmod(0o644)
    private.chmod(0o755)
    assert world_reachable(str(private / "lib" / "mod.py"))
    private.chmod(0o700)
    assert not world_reachable(str(private / "lib" / "mod.py"))
    private.chmod(0o755)
    (private / "lib" / "mod.py").chmod(0o600)
    assert not world_reachable(str(private / "lib" / "mod.py"))
    (private / "lib").chmod(0o744)  # readable but not searchable
    assert not world_reachable(str(private / "lib"))


def test_the_view_is_read_only_and_leaves_the_hosts_mounts_alone(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)  # as /root is: the sandbox's uid cannot reach what is below
    source = tmp_path / "runtime"
    source.mkdir()
    (source / "stdlib.py").write_text("CANARY = 1\n")
    (source / "stdlib.py").chmod(0o644)
    mounts_before = Path("/proc/self/mounts").read_text()
    ns_before = os.readlink("/proc/self/ns/mnt")
    view = make_view((str(source),))
    assert os.readlink("/proc/self/ns/mnt") == ns_before  # only the builder thread moved
    assert Path("/proc/self/mounts").read_text() == mounts_before
    assert not Path(view.paths[0]).exists() or view.paths[0] not in mounts_before
    inside = view.enter_argv(0x70000000, 0x70000000)
    listed = subprocess.run([*inside, "/bin/cat", f"{view.paths[0]}/stdlib.py"],
                            capture_output=True, text=True, timeout=20, check=False)
    assert listed.stdout == "CANARY = 1\n", listed.stderr  # reachable by the sandbox uid
    status = subprocess.run([*inside, "/bin/sh", "-c", "cat /proc/self/status"],
                            capture_output=True, text=True, timeout=20, check=False)
    fields = dict(line.partition(":")[::2] for line in status.stdout.splitlines())
    assert fields["Uid"].split() == fields["Gid"].split() == ["1879048192"] * 4
    assert fields["Groups"].strip() == ""
    as_root = ["nsenter", f"--mount=/proc/{os.getpid()}/fd/{view.fd}", "--"]
    written = subprocess.run([*as_root, "/bin/sh", "-c", f"echo x > {view.paths[0]}/new"],
                             capture_output=True, text=True, timeout=20, check=False)
    assert "Read-only file system" in written.stderr, written
    base = Path(view.paths[0]).parent
    written = subprocess.run([*as_root, "/bin/sh", "-c", f"echo x > {base}/x"],
                             capture_output=True, text=True, timeout=20, check=False)
    assert "Read-only file system" in written.stderr, written
    assert not (source / "new").exists()


def test_the_interpreter_here_needs_a_view_and_gets_one() -> None:
    """pyenv under /root (0700) on CI: without the view the sandbox could not start."""
    config = discover()
    reachable = all(world_reachable(src) for src in bind_sources(config))
    view = runtime_view(config)
    assert (view is None) == reachable
    if reachable:
        pytest.skip("every source is reachable by others on this host: no view needed")
    assert view is not None and len(view.paths) == len(bind_sources(config))
