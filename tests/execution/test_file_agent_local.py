"""file://, fusion:// and data: transfers: roots, traversal, symlinks, write-once."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import pytest

from confide.config import Limits
from confide.execution.file_agent import (
    AlreadyExists,
    FileAgent,
    InvalidUrl,
    PolicyViolation,
    TooLarge,
    TransferFailed,
    UrlPolicy,
)


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "root"
    fusion = tmp_path / "fusion"
    outside = tmp_path / "outside"
    for d in (root, root / "sub", fusion, outside):
        d.mkdir()
    (root / "in.enc").write_bytes(b"ciphertext")
    (root / "sub" / "deep.enc").write_bytes(b"deep")
    (outside / "secret").write_bytes(b"operator secret")
    return {"root": root, "fusion": fusion, "outside": outside, "tmp": tmp_path}


@pytest.fixture
def agent(dirs: dict[str, Path]) -> FileAgent:
    policy = UrlPolicy(
        schemes=frozenset({"file", "fusion", "data"}),
        file_roots=(str(dirs["root"]),),
        fusion_dir=str(dirs["fusion"]),
    )
    return FileAgent(policy, Limits(max_download_bytes=1000, max_upload_bytes=1000))


def url_of(path: Path) -> str:
    return "file://" + str(path)


def download(agent: FileAgent, url: str, max_bytes: int = 1000) -> bytes:
    out = io.BytesIO()
    n = agent.download(url, out, max_bytes=max_bytes)
    assert n == len(out.getvalue())
    return out.getvalue()


# --- file:// ------------------------------------------------------------------


def test_reads_file_inside_root(agent: FileAgent, dirs: dict[str, Path]) -> None:
    assert download(agent, url_of(dirs["root"] / "in.enc")) == b"ciphertext"
    assert download(agent, "file://localhost" + str(dirs["root"] / "sub" / "deep.enc")) == b"deep"


def test_rejects_file_outside_every_root(agent: FileAgent, dirs: dict[str, Path]) -> None:
    with pytest.raises(PolicyViolation, match=r"outside every allowed file root"):
        download(agent, url_of(dirs["outside"] / "secret"))


@pytest.mark.parametrize("tail", ["/../outside/secret", "/sub/../../outside/secret", "/./in.enc"])
def test_rejects_dot_dot_traversal(agent: FileAgent, dirs: dict[str, Path], tail: str) -> None:
    with pytest.raises(PolicyViolation, match=r"empty, '\.' or '\.\.' component"):
        download(agent, "file://" + str(dirs["root"]) + tail)


def test_rejects_percent_encoded_traversal(agent: FileAgent, dirs: dict[str, Path]) -> None:
    with pytest.raises(PolicyViolation, match=r"'\.\.' component"):
        download(agent, "file://" + str(dirs["root"]) + "/%2e%2e/outside/secret")
    with pytest.raises(PolicyViolation, match=r"'\.\.' component"):
        download(agent, "file://" + str(dirs["root"]) + "/sub%2f..%2f..%2foutside/secret")


def test_rejects_nul_byte_in_path(agent: FileAgent, dirs: dict[str, Path]) -> None:
    with pytest.raises(InvalidUrl, match=r"NUL byte"):
        download(agent, url_of(dirs["root"] / "in.enc") + "%00.txt")


def test_rejects_symlink_escaping_root(agent: FileAgent, dirs: dict[str, Path]) -> None:
    (dirs["root"] / "link").symlink_to(dirs["outside"] / "secret")
    with pytest.raises(PolicyViolation, match=r"symbolic link or non-directory"):
        download(agent, url_of(dirs["root"] / "link"))


def test_rejects_symlinked_directory_escaping_root(agent: FileAgent, dirs: dict[str, Path]) -> None:
    (dirs["root"] / "dirlink").symlink_to(dirs["outside"])
    with pytest.raises(PolicyViolation, match=r"symbolic link or non-directory"):
        download(agent, url_of(dirs["root"] / "dirlink" / "secret"))


def test_rejects_symlink_even_when_target_is_inside_root(
    agent: FileAgent, dirs: dict[str, Path]
) -> None:
    (dirs["root"] / "alias").symlink_to(dirs["root"] / "in.enc")
    with pytest.raises(PolicyViolation, match=r"symbolic link"):
        download(agent, url_of(dirs["root"] / "alias"))


def test_root_given_through_a_symlink_is_resolved(dirs: dict[str, Path]) -> None:
    alias = dirs["tmp"] / "root-alias"
    alias.symlink_to(dirs["root"])
    policy = UrlPolicy(schemes=frozenset({"file"}), file_roots=(str(alias),))
    agent = FileAgent(policy, Limits())
    assert download(agent, url_of(dirs["root"] / "in.enc")) == b"ciphertext"


def test_rejects_non_regular_file(agent: FileAgent, dirs: dict[str, Path]) -> None:
    os.mkfifo(dirs["root"] / "fifo")
    with pytest.raises(PolicyViolation, match=r"not a regular file"):
        download(agent, url_of(dirs["root"] / "fifo"))
    with pytest.raises(PolicyViolation, match=r"symbolic link or non-directory|not a regular"):
        download(agent, url_of(dirs["root"] / "sub"))


def test_missing_file_is_transfer_failure(agent: FileAgent, dirs: dict[str, Path]) -> None:
    with pytest.raises(TransferFailed, match=r"no such file or directory"):
        download(agent, url_of(dirs["root"] / "nope.enc"))


def test_rejects_file_over_cap_at_cap_plus_one(agent: FileAgent, dirs: dict[str, Path]) -> None:
    (dirs["root"] / "ten").write_bytes(b"0123456789")
    assert download(agent, url_of(dirs["root"] / "ten"), max_bytes=10) == b"0123456789"
    with pytest.raises(TooLarge, match=r"file has 10 bytes, more than the cap of 9"):
        download(agent, url_of(dirs["root"] / "ten"), max_bytes=9)


def test_limits_cap_applies_below_callers_max_bytes(
    agent: FileAgent, dirs: dict[str, Path]
) -> None:
    (dirs["root"] / "big").write_bytes(b"x" * 1001)
    with pytest.raises(TooLarge, match=r"more than the cap of 1000"):
        download(agent, url_of(dirs["root"] / "big"), max_bytes=10**9)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file://evil.example/etc/passwd", "remote host"),
        ("file:///etc/passwd?x", "query or fragment"),
    ],
)
def test_rejects_malformed_file_urls(agent: FileAgent, url: str, reason: str) -> None:
    with pytest.raises(InvalidUrl, match=reason):
        download(agent, url)


def test_upload_creates_file_inside_root(agent: FileAgent, dirs: dict[str, Path]) -> None:
    agent.upload(url_of(dirs["root"] / "sub" / "out.enc"), io.BytesIO(b"result!!"), 8)
    assert (dirs["root"] / "sub" / "out.enc").read_bytes() == b"result!!"
    leftovers = [p.name for p in (dirs["root"] / "sub").iterdir()]
    assert sorted(leftovers) == ["deep.enc", "out.enc"]


def test_upload_refuses_to_overwrite(agent: FileAgent, dirs: dict[str, Path]) -> None:
    with pytest.raises(AlreadyExists, match=r"target exists; uploads never overwrite"):
        agent.upload(url_of(dirs["root"] / "in.enc"), io.BytesIO(b"evil"), 4)
    assert (dirs["root"] / "in.enc").read_bytes() == b"ciphertext"


def test_upload_refuses_to_write_through_dangling_symlink(
    agent: FileAgent, dirs: dict[str, Path]
) -> None:
    (dirs["root"] / "trap").symlink_to(dirs["outside"] / "planted")
    with pytest.raises(AlreadyExists, match=r"target exists"):
        agent.upload(url_of(dirs["root"] / "trap"), io.BytesIO(b"evil"), 4)
    assert not (dirs["outside"] / "planted").exists()


def test_upload_refuses_symlinked_parent(agent: FileAgent, dirs: dict[str, Path]) -> None:
    (dirs["root"] / "out").symlink_to(dirs["outside"])
    with pytest.raises(PolicyViolation, match=r"symbolic link or non-directory"):
        agent.upload(url_of(dirs["root"] / "out" / "x.enc"), io.BytesIO(b"evil"), 4)
    assert sorted(p.name for p in dirs["outside"].iterdir()) == ["secret"]


def test_upload_does_not_create_missing_file_directories(
    agent: FileAgent, dirs: dict[str, Path]
) -> None:
    with pytest.raises(TransferFailed, match=r"no such file or directory"):
        agent.upload(url_of(dirs["root"] / "new" / "x.enc"), io.BytesIO(b"data"), 4)


def test_short_source_leaves_no_file(agent: FileAgent, dirs: dict[str, Path]) -> None:
    with pytest.raises(TransferFailed, match=r"source ended after 3 of 10 bytes"):
        agent.upload(url_of(dirs["root"] / "short.enc"), io.BytesIO(b"abc"), 10)
    assert not (dirs["root"] / "short.enc").exists()
    assert not [p for p in dirs["root"].iterdir() if p.name.startswith(".confide")]


def test_upload_over_cap_is_refused_before_writing(agent: FileAgent, dirs: dict[str, Path]) -> None:
    with pytest.raises(TooLarge, match=r"1001 bytes exceed the upload cap of 1000 bytes"):
        agent.upload(url_of(dirs["root"] / "big.enc"), io.BytesIO(b"x" * 1001), 1001)
    assert not (dirs["root"] / "big.enc").exists()


def test_file_scheme_refused_when_not_in_policy(dirs: dict[str, Path]) -> None:
    agent = FileAgent(UrlPolicy(), Limits())
    with pytest.raises(PolicyViolation, match=r"scheme 'file' is not allowed"):
        download(agent, url_of(dirs["root"] / "in.enc"))


# --- fusion:// ------------------------------------------------------------------

FUSION = "fusion:///TEACLAVE_FUSION_BASE/"


def test_fusion_round_trip_creates_directories(agent: FileAgent, dirs: dict[str, Path]) -> None:
    agent.upload(FUSION + "task-1/out.fusion", io.BytesIO(b"fused"), 5)
    assert (dirs["fusion"] / "task-1" / "out.fusion").read_bytes() == b"fused"
    assert download(agent, FUSION + "task-1/out.fusion") == b"fused"
    assert download(agent, "FUSION:///TEACLAVE_FUSION_BASE/task-1/out.fusion") == b"fused"


def test_fusion_refuses_overwrite(agent: FileAgent, dirs: dict[str, Path]) -> None:
    agent.upload(FUSION + "once", io.BytesIO(b"1"), 1)
    with pytest.raises(AlreadyExists, match=r"uploads never overwrite"):
        agent.upload(FUSION + "once", io.BytesIO(b"2"), 1)
    assert (dirs["fusion"] / "once").read_bytes() == b"1"


@pytest.mark.parametrize(
    "rel", ["../outside/secret", "a/../../outside/secret", "%2e%2e/outside/secret", "/abs", "a//b"]
)
def test_fusion_rejects_traversal(agent: FileAgent, rel: str) -> None:
    with pytest.raises(PolicyViolation, match=r"empty, '\.' or '\.\.' component"):
        download(agent, FUSION + rel)


@pytest.mark.parametrize(
    "url",
    [
        "fusion:///OTHER_BASE/x",
        "fusion://host/TEACLAVE_FUSION_BASE/x",
        "fusion:/TEACLAVE_FUSION_BASE/x",
    ],
)
def test_fusion_rejects_other_prefixes(agent: FileAgent, url: str) -> None:
    with pytest.raises(InvalidUrl, match=r"fusion URL must start with"):
        download(agent, url)


def test_fusion_rejects_symlink_escape(agent: FileAgent, dirs: dict[str, Path]) -> None:
    (dirs["fusion"] / "esc").symlink_to(dirs["outside"])
    with pytest.raises(PolicyViolation, match=r"symbolic link"):
        download(agent, FUSION + "esc/secret")
    with pytest.raises(PolicyViolation, match=r"symbolic link"):
        agent.upload(FUSION + "esc/new", io.BytesIO(b"x"), 1)
    assert sorted(p.name for p in dirs["outside"].iterdir()) == ["secret"]


# --- data: ----------------------------------------------------------------------


def data_url(payload: bytes) -> str:
    return "data:text/plain;base64," + base64.b64encode(payload).decode()


def test_data_url_teaclave_form(agent: FileAgent) -> None:
    assert download(agent, data_url(b"hello\x00world")) == b"hello\x00world"
    assert download(agent, "DATA:text/plain;base64,aGk=") == b"hi"
    assert download(agent, "data:text/plain;base64,") == b""


@pytest.mark.parametrize(
    "url",
    [
        "data:,hello",
        "data:text/plain,hello",
        "data:application/octet-stream;base64,aGk=",
        "data:;base64,aGk=",
        "data:text/plain;charset=utf-8;base64,aGk=",
        "data:TEXT/PLAIN;BASE64,aGk=",
    ],
)
def test_data_url_other_forms_refused(agent: FileAgent, url: str) -> None:
    with pytest.raises(PolicyViolation, match=r"only data:text/plain;base64, URLs are accepted"):
        download(agent, url)


@pytest.mark.parametrize("payload", ["aGk", "a-_b", "aGk=aGk=", "!!!!"])
def test_data_url_invalid_base64_refused(agent: FileAgent, payload: str) -> None:
    with pytest.raises(InvalidUrl, match=r"not valid base64"):
        download(agent, "data:text/plain;base64," + payload)


def test_data_url_over_cap_at_cap_plus_one(agent: FileAgent) -> None:
    assert len(download(agent, data_url(b"x" * 30), max_bytes=30)) == 30
    with pytest.raises(TooLarge, match=r"exceeds the cap of 29 bytes"):
        download(agent, data_url(b"x" * 30), max_bytes=29)
    with pytest.raises(TooLarge, match=r"exceeds the cap of 29 bytes"):
        download(agent, data_url(b"x" * 300), max_bytes=29)


def test_data_url_cannot_be_uploaded_to(agent: FileAgent) -> None:
    with pytest.raises(PolicyViolation, match=r"data: URLs cannot be uploaded to"):
        agent.upload("data:text/plain;base64,", io.BytesIO(b"x"), 1)


def test_data_url_payload_never_appears_in_errors(agent: FileAgent) -> None:
    with pytest.raises(PolicyViolation) as info:
        download(agent, "data:application/json;base64,c2VjcmV0LXRva2Vu")
    assert "c2VjcmV0" not in str(info.value)
