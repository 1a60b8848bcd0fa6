"""The public surface of confide.crypto is declared, sorted and pinned."""

from __future__ import annotations

import confide.crypto as crypto


def test_all_is_pinned_and_sorted() -> None:
    assert crypto.__all__ == [
        "CMAC_LENGTH",
        "CryptoError",
        "CryptoInfoError",
        "CryptoLimitError",
        "DEFAULT_SCHEMA",
        "Decryptor",
        "IntegrityError",
        "PUSH_SCHEMAS",
        "SCHEMAS",
        "compute_cmac",
        "decrypt_stream",
        "encrypt_stream",
        "encrypted_size",
        "new_decryptor",
        "validate_crypto_info",
    ]
    assert crypto.__all__ == sorted(crypto.__all__)
    for name in crypto.__all__:
        assert hasattr(crypto, name)


def test_every_error_derives_from_the_single_base() -> None:
    for err in (crypto.CryptoInfoError, crypto.IntegrityError, crypto.CryptoLimitError):
        assert issubclass(err, crypto.CryptoError)


def test_schemas_and_default() -> None:
    assert crypto.SCHEMAS == {
        "aes-gcm-128",
        "aes-gcm-256",
        "teaclave-file-128",
        "raw",
        "confide-stream-256",
    }
    assert crypto.DEFAULT_SCHEMA == "confide-stream-256"
    assert crypto.CMAC_LENGTH == 16


def test_encrypted_size_predicts_what_encrypt_stream_writes() -> None:
    import io
    import os

    for schema, key, iv in (("confide-stream-256", b"k" * 32, b""),
                            ("aes-gcm-128", b"k" * 16, b"i" * 12),
                            ("aes-gcm-256", b"k" * 32, b"i" * 12), ("raw", b"", b"")):
        for size in (0, 1, 4095, 1 << 20, (1 << 20) + 1, 3 * (1 << 20)):
            out = io.BytesIO()
            crypto.encrypt_stream(schema, key, iv, io.BytesIO(os.urandom(size)), out)
            assert crypto.encrypted_size(schema, size) == len(out.getvalue()), (schema, size)
    assert crypto.encrypted_size("teaclave-file-128", 10) is None
