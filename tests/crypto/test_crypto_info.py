"""validate_crypto_info gives Teaclave's FileCrypto::new messages (spec §3.5)."""

from __future__ import annotations

import pytest

from confide.crypto import CryptoInfoError, validate_crypto_info


@pytest.mark.parametrize(
    ("schema", "key", "iv"),
    [
        ("aes-gcm-128", 16, 12),
        ("aes-gcm-256", 32, 12),
        ("teaclave-file-128", 16, 0),
        ("confide-stream-256", 32, 0),
        ("raw", 0, 0),
        ("raw", 7, 3),  # raw ignores key and iv
    ],
)
def test_accepts_valid_crypto_info(schema: str, key: int, iv: int) -> None:
    validate_crypto_info(schema, bytes(key), bytes(iv))


@pytest.mark.parametrize(
    ("schema", "key", "iv", "message"),
    [
        ("foo", 16, 12, "Invalid crypto schema: foo"),
        ("AES-GCM-128", 16, 12, "Invalid crypto schema: AES-GCM-128"),
        ("", 16, 12, "Invalid crypto schema: "),
        ("aes-gcm-128", 15, 12, "Invalid key length for AesGcm128: 15"),
        ("aes-gcm-128", 32, 12, "Invalid key length for AesGcm128: 32"),
        ("aes-gcm-128", 16, 11, "Invalid iv length for AesGcm128: 11"),
        ("aes-gcm-128", 16, 0, "Invalid iv length for AesGcm128: 0"),
        ("aes-gcm-256", 16, 12, "Invalid key length for AesGcm256: 16"),
        ("aes-gcm-256", 32, 16, "Invalid iv length for AesGcm256: 16"),
        ("teaclave-file-128", 16, 12, "IV is not empty for teaclave_file_128"),
        ("teaclave-file-128", 15, 12, "IV is not empty for teaclave_file_128"),  # iv first
        ("teaclave-file-128", 32, 0, "Invalid key length for teaclave_file_128: 32"),
        ("confide-stream-256", 32, 12, "IV is not empty for confide_stream_256"),
        ("confide-stream-256", 16, 0, "Invalid key length for confide_stream_256: 16"),
    ],
)
def test_rejects_invalid_crypto_info_with_teaclave_message(
    schema: str, key: int, iv: int, message: str
) -> None:
    with pytest.raises(CryptoInfoError) as err:
        validate_crypto_info(schema, bytes(key), bytes(iv))
    assert str(err.value) == message


@pytest.mark.parametrize("call", ["encrypt", "decrypt", "cmac"])
def test_stream_functions_refuse_unknown_schema_before_touching_data(call: str) -> None:
    import io

    from confide.crypto import compute_cmac, decrypt_stream, encrypt_stream

    src, dst = io.BytesIO(b"data"), io.BytesIO()
    with pytest.raises(CryptoInfoError, match="Invalid crypto schema: aes-gcm-512"):
        if call == "encrypt":
            encrypt_stream("aes-gcm-512", bytes(16), bytes(12), src, dst)
        elif call == "decrypt":
            decrypt_stream("aes-gcm-512", bytes(16), bytes(12), src, dst)
        else:
            compute_cmac("aes-gcm-512", src)
    assert src.tell() == 0 and dst.getvalue() == b""
