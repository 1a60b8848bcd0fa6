"""Teaclave's encrypted fixtures (vectors/README.md §A, §B) against confide.crypto."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

from confide.crypto import IntegrityError, compute_cmac, decrypt_stream, encrypt_stream

from .conftest import PFS_FIXTURES, PfsFixture, ScriptedRng

# every test on both paths: the C extension and the pure-Python one (conftest.pfs_path)
pytestmark = pytest.mark.usefixtures("pfs_path")

ZERO16 = bytes(16)
GBDT_IV = bytes.fromhex("010101010101010101010101")
GBDT_CMAC = bytes.fromhex("592f1e607649d89ff2aa8a2841a57cad")


def _functions(vectors: Path) -> Path:
    return vectors / "teaclave" / "functions"


@pytest.mark.parametrize("fx", PFS_FIXTURES, ids=lambda f: f.name)
def test_teaclave_file_fixture_decrypts_to_its_plaintext_and_cmac(
    vectors: Path, fx: PfsFixture
) -> None:
    base = _functions(vectors)
    out = io.BytesIO()
    with open(base / fx.enc, "rb") as src:
        cmac = decrypt_stream(
            "teaclave-file-128", ZERO16, b"", src, out,
            file_name=fx.name, expected_cmac=bytes.fromhex(fx.cmac),
        )  # fmt: skip
    assert cmac.hex() == fx.cmac
    assert out.getvalue() == (base / fx.plain).read_bytes()
    with open(base / fx.enc, "rb") as src:
        assert compute_cmac("teaclave-file-128", src).hex() == fx.cmac


@pytest.mark.parametrize("fx", PFS_FIXTURES, ids=lambda f: f.name)
def test_teaclave_file_writer_reproduces_fixture_byte_for_byte(
    vectors: Path, fx: PfsFixture
) -> None:
    # A single-node file depends only on key, key_id, name and content: with the
    # fixture's key_id our writer must produce Teaclave's exact bytes.
    base = _functions(vectors)
    fixture = (base / fx.enc).read_bytes()
    out = io.BytesIO()
    with open(base / fx.plain, "rb") as src:
        cmac = encrypt_stream(
            "teaclave-file-128", ZERO16, b"", src, out,
            file_name=fx.name, rng=ScriptedRng(bytes(16), fixture[16:48]),
        )  # fmt: skip
    assert out.getvalue() == fixture
    assert cmac.hex() == fx.cmac


def test_rejects_teaclave_fixture_under_another_name(vectors: Path) -> None:
    fx = PFS_FIXTURES[0]
    with (
        open(_functions(vectors) / fx.enc, "rb") as src,
        pytest.raises(IntegrityError, match=r"embedded file name 'train\.enc'"),
    ):
        decrypt_stream("teaclave-file-128", ZERO16, b"", src, io.BytesIO(), file_name="x.enc")


def test_rejects_teaclave_fixture_with_wrong_key(vectors: Path) -> None:
    fx = PFS_FIXTURES[0]
    wrong = bytes(15) + b"\x01"  # README §A: 00…01 gives InvalidTag
    with (
        open(_functions(vectors) / fx.enc, "rb") as src,
        pytest.raises(IntegrityError, match="metadata node does not verify"),
    ):
        decrypt_stream("teaclave-file-128", wrong, b"", src, io.BytesIO(), file_name=fx.name)


def test_rejects_teaclave_fixture_with_registered_cmac_of_another_file(vectors: Path) -> None:
    # mesapy_optional_files.py registers train.enc with a wrong cmac (spec §5.1).
    fx = PFS_FIXTURES[0]
    other = bytes.fromhex(PFS_FIXTURES[1].cmac)
    with (
        open(_functions(vectors) / fx.enc, "rb") as src,
        pytest.raises(IntegrityError, match="expected cmac"),
    ):
        decrypt_stream(
            "teaclave-file-128", ZERO16, b"", src, io.BytesIO(),
            file_name=fx.name, expected_cmac=other,
        )  # fmt: skip


def test_aes_gcm_128_fixture_decrypts_and_reencrypts_byte_for_byte(vectors: Path) -> None:
    base = _functions(vectors) / "gbdt_training"
    fixture = (base / "train.aes_gcm_128").read_bytes()
    plain = (base / "train.txt").read_bytes()
    out = io.BytesIO()
    cmac = decrypt_stream(
        "aes-gcm-128", ZERO16, GBDT_IV, io.BytesIO(fixture), out, expected_cmac=GBDT_CMAC
    )
    assert cmac == GBDT_CMAC
    assert out.getvalue() == plain
    again = io.BytesIO()
    assert encrypt_stream("aes-gcm-128", ZERO16, GBDT_IV, io.BytesIO(plain), again) == GBDT_CMAC
    assert again.getvalue() == fixture
    assert compute_cmac("aes-gcm-128", io.BytesIO(fixture)) == GBDT_CMAC


def test_rejects_aes_gcm_fixture_with_wrong_iv(vectors: Path) -> None:
    fixture = (_functions(vectors) / "gbdt_training" / "train.aes_gcm_128").read_bytes()
    with pytest.raises(IntegrityError, match="tag does not verify"):
        decrypt_stream("aes-gcm-128", ZERO16, bytes(12), io.BytesIO(fixture), io.BytesIO())


@pytest.mark.parametrize(
    ("schema", "key", "iv", "plain", "file_hex", "cmac_hex"),
    [
        # vectors/README.md §B, fusion inputs (teaclave_cli encrypt)
        ("aes-gcm-128", "00000000000000000000000000000001", "123456781234567812345678",
         b"u1_hello\nu1_teaclave",
         "533df70b5834287c3bb9bd56d13b246ea6362d12e8afd048b339fc835733e16c761a301c",
         "e8afd048b339fc835733e16c761a301c"),
        ("aes-gcm-256", "00" * 31 + "02", "012345670123456701234567",
         b"u2_welcome\nu2_to\nu2_teaclave",
         "428695a0979d40164ad59bc47a8f3bcc02498c0290a49d976d7b64c875d7cf7a"
         "7843dee709e29ba0dcb865d2",
         "75d7cf7a7843dee709e29ba0dcb865d2"),
        # §B, builtin-password-check data: URL
        ("aes-gcm-128", "00" * 16, "00" * 12, b"password",
         base64.b64decode("c+mpvRfZ0fboR0j3rTgOGDBiubSzlCt9").hex(),
         "e84748f7ad380e183062b9b4b3942b7d"),
    ],
)  # fmt: skip
def test_aes_gcm_vectors_from_teaclave_examples(
    schema: str, key: str, iv: str, plain: bytes, file_hex: str, cmac_hex: str
) -> None:
    out = io.BytesIO()
    cmac = encrypt_stream(schema, bytes.fromhex(key), bytes.fromhex(iv), io.BytesIO(plain), out)
    assert out.getvalue().hex() == file_hex
    assert cmac.hex() == cmac_hex
    back = io.BytesIO()
    decrypt_stream(
        schema, bytes.fromhex(key), bytes.fromhex(iv), io.BytesIO(bytes.fromhex(file_hex)), back,
        expected_cmac=bytes.fromhex(cmac_hex),
    )  # fmt: skip
    assert back.getvalue() == plain


def test_rejects_file_encrypted_with_empty_aad() -> None:
    # README §A: Teaclave's AAD is 8 zero bytes; an empty-AAD file must not verify.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    blob = AESGCM(ZERO16).encrypt(bytes(12), b"password", None)
    with pytest.raises(IntegrityError):
        decrypt_stream("aes-gcm-128", ZERO16, bytes(12), io.BytesIO(blob), io.BytesIO())
