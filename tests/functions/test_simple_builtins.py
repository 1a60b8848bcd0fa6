"""Golden and error-path tests for the non-numeric builtins."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_der_private_key,
)

from confide.invocation import FunctionError

from .conftest import RunBuiltin

Vec = Callable[[str], bytes]

# --- echo ----------------------------------------------------------------------------------


def test_echo_returns_message_and_logs_it_when_save_log(run_builtin: RunBuiltin) -> None:
    run = run_builtin("builtin-echo", {"message": "Hello Teaclave!", "save_log": "true"})
    assert run.result == "Hello Teaclave!"
    assert run.log == ["[INFO teaclave_function::echo] Hello Teaclave!"]


@pytest.mark.parametrize("message", [3, None, ["hi"], {"a": 1}, True])
def test_echo_rejects_non_string_message(run_builtin: RunBuiltin, message: object) -> None:
    with pytest.raises(FunctionError, match=r"^Cannot deserialize arguments$"):
        run_builtin("builtin-echo", {"message": message})


def test_echo_rejects_missing_message(run_builtin: RunBuiltin) -> None:
    with pytest.raises(FunctionError, match=r"^Cannot deserialize arguments$"):
        run_builtin("builtin-echo", {"msg": "hi"})


# --- password check ------------------------------------------------------------------------


def test_password_check_finds_exposed_password(run_builtin: RunBuiltin, fvec: Vec) -> None:
    inputs = {
        "password": fvec("password_check/password.txt"),
        "exposed_passwords": fvec("password_check/exposed_passwords.txt"),
    }
    assert run_builtin("builtin-password-check", {"anything": 1}, inputs).result == "true"


def test_password_check_false_for_unlisted_password(run_builtin: RunBuiltin, fvec: Vec) -> None:
    inputs = {
        "password": b"  correct horse battery staple \r\n",
        "exposed_passwords": fvec("password_check/exposed_passwords.txt"),
    }
    assert run_builtin("builtin-password-check", {}, inputs).result == "false"


def test_password_check_empty_password_file_is_clean_error(run_builtin: RunBuiltin) -> None:
    inputs = {"password": b"", "exposed_passwords": b"password\n"}
    with pytest.raises(FunctionError, match=r"^Empty password file$"):
        run_builtin("builtin-password-check", {}, inputs)


def test_password_check_unassigned_input_is_invalid_identifier(run_builtin: RunBuiltin) -> None:
    with pytest.raises(FunctionError, match=r"^Invalid input file identifier\.$"):
        run_builtin("builtin-password-check", {}, {"password": b"x\n"})


# --- online decrypt ------------------------------------------------------------------------

TEACLAVE_DECRYPT_ARGS = {
    "key": "aqUdgZ0lJnuz9yiPkoDxM6ZcTcVVpd4KKLqzbHD88Lg=",
    "nonce": "AAECAwQFBgcICQoL",
    "encrypted_data": "CaZd8qSMMlBp8SjSXj2I4dQIuC9KkZ5DI/ATo1sWJw==",
    "algorithm": "aes256gcm",
}


def test_online_decrypt_teaclave_example(run_builtin: RunBuiltin) -> None:
    assert run_builtin("builtin_online_decrypt", TEACLAVE_DECRYPT_ARGS).result == "Hello Teaclave!"


def test_online_decrypt_aes128_vector_built_in_test(run_builtin: RunBuiltin) -> None:
    key, nonce = bytes(range(16)), bytes(range(12)) + b"extra"
    data = AESGCM(key).encrypt(nonce[:12], "grüße".encode(), None)
    args = {
        "key": base64.b64encode(key).decode(),
        "nonce": base64.b64encode(nonce).decode(),  # only the first 12 bytes are used
        "encrypted_data": base64.b64encode(data).decode(),
        "algorithm": "aes128gcm",
    }
    assert run_builtin("builtin_online_decrypt", args).result == "grüße"


def _mutated(**changes: str) -> dict[str, str]:
    return {**TEACLAVE_DECRYPT_ARGS, **changes}


def test_online_decrypt_rejects_flipped_ciphertext_bit(run_builtin: RunBuiltin) -> None:
    data = bytearray(base64.b64decode(TEACLAVE_DECRYPT_ARGS["encrypted_data"]))
    data[0] ^= 1
    with pytest.raises(FunctionError, match=r"^decryption error$"):
        run_builtin(
            "builtin_online_decrypt", _mutated(encrypted_data=base64.b64encode(data).decode())
        )


def test_online_decrypt_rejects_wrong_key_size_for_algorithm(run_builtin: RunBuiltin) -> None:
    with pytest.raises(FunctionError, match=r"^decryption error$"):
        run_builtin("builtin_online_decrypt", _mutated(algorithm="aes128gcm"))


def test_online_decrypt_rejects_unknown_algorithm(run_builtin: RunBuiltin) -> None:
    with pytest.raises(FunctionError, match=r"^Invalid algorithm$"):
        run_builtin("builtin_online_decrypt", _mutated(algorithm="chacha20poly1305"))


def test_online_decrypt_short_nonce_is_clean_error_not_crash(run_builtin: RunBuiltin) -> None:
    with pytest.raises(FunctionError, match=r"^Nonce too short"):
        run_builtin("builtin_online_decrypt", _mutated(nonce="AAECAw=="))


def test_online_decrypt_non_utf8_plaintext(run_builtin: RunBuiltin) -> None:
    key, nonce = bytes(32), bytes(12)
    data = AESGCM(key).encrypt(nonce, b"\xff\xfe", None)
    args = {
        "key": base64.b64encode(key).decode(),
        "nonce": base64.b64encode(nonce).decode(),
        "encrypted_data": base64.b64encode(data).decode(),
        "algorithm": "aes256gcm",
    }
    with pytest.raises(FunctionError, match=r"^base64 decoded error$"):
        run_builtin("builtin_online_decrypt", args)


def test_online_decrypt_rejects_bad_base64(run_builtin: RunBuiltin) -> None:
    with pytest.raises(FunctionError, match=r"^Invalid base64 in key$"):
        run_builtin("builtin_online_decrypt", _mutated(key="not base64!"))


def test_online_decrypt_requires_algorithm_argument(run_builtin: RunBuiltin) -> None:
    args = {k: v for k, v in TEACLAVE_DECRYPT_ARGS.items() if k != "algorithm"}
    with pytest.raises(FunctionError, match=r"^Cannot deserialize arguments$"):
        run_builtin("builtin_online_decrypt", args)


# --- RSA sign ------------------------------------------------------------------------------


def test_rsa_sign_matches_independent_signature_and_golden(
    run_builtin: RunBuiltin, fvec: Vec
) -> None:
    der = fvec("rsa_sign/key.der")
    run = run_builtin("builtin-rsa-sign", {"data": "test data"}, {"rsa_key": der})
    key = load_der_private_key(der, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    independent = key.sign(b"test data", padding.PKCS1v15(), hashes.SHA256())
    assert run.result == base64.b64encode(independent).decode()
    assert run.result == fvec("rsa_sign/expected_rsasign.txt").decode().replace("\n", "")


def test_rsa_sign_rejects_pkcs8_key(run_builtin: RunBuiltin, fvec: Vec) -> None:
    key = load_der_private_key(fvec("rsa_sign/key.der"), None)
    pkcs8 = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    with pytest.raises(FunctionError, match=r"^InvalidEncoding$"):
        run_builtin("builtin-rsa-sign", {"data": "x"}, {"rsa_key": pkcs8})


def test_rsa_sign_rejects_truncated_and_non_rsa_keys(run_builtin: RunBuiltin, fvec: Vec) -> None:
    with pytest.raises(FunctionError, match=r"^InvalidEncoding$"):
        run_builtin("builtin-rsa-sign", {"data": "x"}, {"rsa_key": fvec("rsa_sign/key.der")[:-10]})
    ec_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption()
    )
    with pytest.raises(FunctionError, match=r"^InvalidEncoding$"):
        run_builtin("builtin-rsa-sign", {"data": "x"}, {"rsa_key": ec_key})


def test_rsa_sign_rejects_key_ring_considers_too_small(run_builtin: RunBuiltin) -> None:
    small = rsa.generate_private_key(65537, 1024).private_bytes(
        Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption()
    )
    with pytest.raises(FunctionError, match=r"^TooSmall$"):
        run_builtin("builtin-rsa-sign", {"data": "x"}, {"rsa_key": small})


# --- ordered set intersect -----------------------------------------------------------------

PSI_OUT = ("output_result1", "output_result2")


def test_ordered_set_intersect_golden(run_builtin: RunBuiltin, fvec: Vec) -> None:
    inputs = {
        "input_data1": fvec("ordered_set_intersect/psi0.txt"),
        "input_data2": fvec("ordered_set_intersect/psi1.txt"),
    }
    run = run_builtin("builtin-ordered-set-intersect", {"order": "ascending"}, inputs, PSI_OUT)
    assert run.result == "3 common items"
    assert run.outputs == {"output_result1": b"0101010", "output_result2": b"01101"}


@pytest.mark.parametrize("order", ["desending", "descending"])
def test_ordered_set_intersect_descending_accepts_teaclave_typo(
    run_builtin: RunBuiltin, order: str
) -> None:
    inputs = {"input_data1": b"ff\ncc\n0a\n", "input_data2": b"cc\n0b\n0a\n"}
    run = run_builtin("builtin-ordered-set-intersect", {"order": order}, inputs, PSI_OUT)
    assert (run.result, run.outputs["output_result1"], run.outputs["output_result2"]) == (
        "2 common items",
        b"011",
        b"101",
    )


def test_ordered_set_intersect_rejects_unsorted_input(run_builtin: RunBuiltin) -> None:
    inputs = {"input_data1": b"0b\n0a\n", "input_data2": b"0a\n"}
    with pytest.raises(FunctionError, match=r"^Invalid ordering$"):
        run_builtin("builtin-ordered-set-intersect", {"order": "ascending"}, inputs, PSI_OUT)


def test_ordered_set_intersect_invalid_order_after_creating_outputs(
    run_builtin: RunBuiltin,
) -> None:
    inputs = {"input_data1": b"0a\n", "input_data2": b"0a\n"}
    with pytest.raises(FunctionError, match=r"^Invalid order$") as info:
        run_builtin("builtin-ordered-set-intersect", {"order": "random"}, inputs, PSI_OUT)
    assert info.value.reason == "Invalid order"


@pytest.mark.parametrize(
    ("line", "reason"),
    [(b"abc", "Odd number of digits"), (b"zz", "Invalid character 'z' at position 0")],
)
def test_ordered_set_intersect_hex_errors(
    run_builtin: RunBuiltin, line: bytes, reason: str
) -> None:
    inputs = {"input_data1": line + b"\n", "input_data2": b"0a\n"}
    with pytest.raises(FunctionError) as info:
        run_builtin("builtin-ordered-set-intersect", {"order": "ascending"}, inputs, PSI_OUT)
    assert info.value.reason == reason


# --- ordered set join ----------------------------------------------------------------------

JOIN_ARGS = {"left_column": 0, "right_column": 0, "ascending": True, "drop": True}


def test_ordered_set_join_golden_reproduces_gbdt_training_set(
    run_builtin: RunBuiltin, fvec: Vec
) -> None:
    inputs = {
        "input_data1": fvec("ordered_set_join/join0.csv"),
        "input_data2": fvec("ordered_set_join/join1.csv"),
    }
    run = run_builtin("builtin-ordered-set-join", JOIN_ARGS, inputs, ("output_result",))
    assert run.result == "120 records"
    assert run.outputs["output_result"].strip() == fvec("gbdt_training/train.txt").strip()


def test_ordered_set_join_keeps_key_without_drop_and_quotes_fields(run_builtin: RunBuiltin) -> None:
    inputs = {"input_data1": b"a,1\nb,2\nc,3\n", "input_data2": b'b,"x,y"\nc,z\nd,w\n'}
    args = {**JOIN_ARGS, "drop": False}
    run = run_builtin("builtin-ordered-set-join", args, inputs, ("output_result",))
    assert run.result == "2 records"
    assert run.outputs["output_result"] == b'b,2,"x,y"\nc,3,z\n'


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        ({"input_data1": b"", "input_data2": b"a\n"}, "input1 is empty"),
        ({"input_data1": b"a\n", "input_data2": b"\n"}, "input2 is empty"),
    ],
)
def test_ordered_set_join_empty_inputs(
    run_builtin: RunBuiltin, inputs: dict[str, bytes], reason: str
) -> None:
    with pytest.raises(FunctionError) as info:
        run_builtin("builtin-ordered-set-join", JOIN_ARGS, inputs, ("output_result",))
    assert info.value.reason == reason


def test_ordered_set_join_rejects_column_out_of_range(run_builtin: RunBuiltin) -> None:
    inputs = {"input_data1": b"a,1\n", "input_data2": b"a,2\n"}
    with pytest.raises(FunctionError, match=r"^invalid index$"):
        run_builtin(
            "builtin-ordered-set-join", {**JOIN_ARGS, "left_column": 5}, inputs, ("output_result",)
        )


@pytest.mark.parametrize(
    "bad", [{"ascending": "true"}, {"left_column": -1}, {"left_column": 0.0}, {"drop": 1}]
)
def test_ordered_set_join_rejects_mistyped_arguments(
    run_builtin: RunBuiltin, bad: dict[str, object]
) -> None:
    inputs = {"input_data1": b"a\n", "input_data2": b"a\n"}
    with pytest.raises(FunctionError, match=r"^Cannot deserialize arguments$"):
        run_builtin("builtin-ordered-set-join", {**JOIN_ARGS, **bad}, inputs, ("output_result",))


# --- private join and compute --------------------------------------------------------------

PJC_OUT = ("output_data0", "output_data1", "output_data2")


def test_private_join_and_compute_golden(run_builtin: RunBuiltin, fvec: Vec) -> None:
    base = "private_join_and_compute/three_party_data/"
    inputs = {f"input_data{i}": fvec(f"{base}bank_{b}.txt") for i, b in enumerate("abc")}
    run = run_builtin("builtin-private-join-and-compute", {"num_user": 3}, inputs, PJC_OUT)
    assert run.result == "3 users join the task in total."
    outputs = {run.outputs[name] for name in PJC_OUT}
    assert len(outputs) == 1
    assert set(outputs.pop().decode().splitlines(keepends=True)) == {"c, 470000\n", "e, 5033000\n"}


def test_private_join_and_compute_needs_two_parties(run_builtin: RunBuiltin) -> None:
    with pytest.raises(FunctionError, match=r"^The demo requires at least two parties!$"):
        run_builtin("builtin-private-join-and-compute", {"num_user": 1})


def test_private_join_and_compute_overflow_is_clean_error(run_builtin: RunBuiltin) -> None:
    inputs = {"input_data0": b"x : 4294967295\n", "input_data1": b"x : 1\n"}
    with pytest.raises(FunctionError, match=r"^Sum overflows u32"):
        run_builtin(
            "builtin-private-join-and-compute",
            {"num_user": 2},
            inputs,
            ("output_data0", "output_data1"),
        )


def test_private_join_and_compute_skips_malformed_lines(run_builtin: RunBuiltin) -> None:
    inputs = {"input_data0": b"x : 5\nab\ny : -1\nz : 1 : 2\nw:7\n", "input_data1": b"x:1\nw : 1\n"}
    run = run_builtin(
        "builtin-private-join-and-compute",
        {"num_user": 2},
        inputs,
        ("output_data0", "output_data1"),
    )
    assert run.outputs["output_data0"] == b"w, 8\nx, 6\n"


def test_private_join_and_compute_rejects_string_num_user(run_builtin: RunBuiltin) -> None:
    with pytest.raises(FunctionError, match=r"^Cannot deserialize arguments$"):
        run_builtin("builtin-private-join-and-compute", {"num_user": "3"})
