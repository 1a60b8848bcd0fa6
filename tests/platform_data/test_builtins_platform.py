"""Issue 5 through the full platform path: every Teaclave builtin with encrypted
inputs (Teaclave's own fixtures where they exist) and encrypted outputs decrypted
by their owners, compared with the golden files; a numpy Python task; a wasm C
module built by clang."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from confide.client import OutputLocation, Task
from tests.platform._server import Server

from ._helpers import (
    PY_COPY,
    Party,
    party,
    register_function,
    register_teaclave_fixture,
    run_task,
)

GBDT_ARGS = {"feature_size": 4, "max_depth": 4, "iterations": 100, "shrinkage": 0.1,
             "feature_sample_ratio": 1.0, "data_sample_ratio": 1.0, "min_leaf_size": 1,
             "loss": "LAD", "training_optimization_level": 2}
LR_ARGS = {"alg_alpha": 0.3, "alg_iters": 100, "feature_size": 30}
#: Teaclave's gbdt example output key (vectors README §C).
GBDT_OUTPUT_KEY = bytes.fromhex("3fc3fad0fc7fcb1bf7a8474d1b2ffef0")


@pytest.fixture(scope="module")
def admin(server: Server) -> Any:
    with server.admin() as client:
        yield client


def _builtin(admin: Any, name: str, args: Sequence[str] = (), inputs: Sequence[str] = (),
             outputs: Sequence[str] = ()) -> str:
    return register_function(admin, name, executor_type="builtin", arguments=args,
                             inputs=inputs, outputs=outputs)


def _upload(p: Party, data: bytes, schema: str = "confide-stream-256") -> str:
    return p.client.register_upload(p.client.upload_encrypted(data, schema=schema))


def _result(p: Party, task: Task, name: str, out: OutputLocation) -> bytes:
    assert task.ok is True, task.reason
    return p.client.download_decrypted(out, task.tags_map[name])


def test_echo(server: Server, admin: Any) -> None:
    alice = party(server)
    task = run_task(alice, _builtin(admin, "builtin-echo", ["message"]),
                    {"message": "Hello, Teaclave!"}, executor="builtin")
    assert (task.ok, task.return_value) == (True, b"Hello, Teaclave!")


def test_gbdt_train_on_teaclave_fixture_then_predict_with_the_chained_model(
        server: Server, admin: Any, functions_dir: Path) -> None:
    alice = party(server)
    train_in = register_teaclave_fixture(alice, functions_dir, "gbdt_training/train.enc")
    model_out = alice.client.new_output(file_name="model.enc", schema="teaclave-file-128",
                                        key=GBDT_OUTPUT_KEY)
    train = _builtin(admin, "builtin-gbdt-train", list(GBDT_ARGS), ["training_data"],
                     ["trained_model"])
    task = run_task(alice, train, GBDT_ARGS, executor="builtin",
                    inputs={"training_data": ([alice], train_in)},
                    outputs={"trained_model": ([alice], model_out.data_id)})
    assert task.return_value == b"Trained 120 lines of data."
    model = _result(alice, task, "trained_model", model_out)
    assert model == (functions_dir / "gbdt_training/expected_model.txt").read_bytes()

    predict = _builtin(admin, "builtin-gbdt-predict", [], ["model_file", "data_file"],
                       ["result_file"])
    model_in = alice.client.register_input_from_output(model_out.data_id)
    data_in = _upload(alice, (functions_dir / "gbdt_prediction/test_data.txt").read_bytes(),
                      "aes-gcm-256")
    result_out = alice.client.new_output(schema="aes-gcm-128")
    task = run_task(alice, predict, {}, executor="builtin",
                    inputs={"model_file": ([alice], model_in), "data_file": ([alice], data_in)},
                    outputs={"result_file": ([alice], result_out.data_id)})
    assert task.return_value == b"Predict result has 30 lines of data."
    assert _result(alice, task, "result_file", result_out) == \
        (functions_dir / "gbdt_prediction/expected_result.txt").read_bytes()


def test_logistic_regression_train_then_predict(
        server: Server, admin: Any, functions_dir: Path) -> None:
    alice = party(server)
    base = functions_dir
    train = _builtin(admin, "builtin-logistic-regression-train", list(LR_ARGS),
                     ["training_data"], ["model_file"])
    model_out = alice.client.new_output(schema="aes-gcm-256")
    task = run_task(alice, train, LR_ARGS, executor="builtin",
                    inputs={"training_data": ([alice], _upload(
                        alice, (base / "logistic_regression_training/train.txt").read_bytes()))},
                    outputs={"model_file": ([alice], model_out.data_id)})
    assert task.return_value == b"Trained 100 lines of data."
    assert _result(alice, task, "model_file", model_out) == \
        (base / "logistic_regression_training/expected_model.txt").read_bytes()

    predict = _builtin(admin, "builtin-logistic-regression-predict", [],
                       ["model_file", "data_file"], ["result_file"])
    result_out = alice.client.new_output(schema="teaclave-file-128")
    task = run_task(alice, predict, {}, executor="builtin", inputs={
        "model_file": ([alice], alice.client.register_input_from_output(model_out.data_id)),
        "data_file": ([alice], _upload(
            alice, (base / "logistic_regression_prediction/predict_input.txt").read_bytes(),
            "teaclave-file-128"))},
        outputs={"result_file": ([alice], result_out.data_id)})
    assert task.return_value == b"Predicted 5 lines of data."
    assert _result(alice, task, "result_file", result_out) == \
        (base / "logistic_regression_prediction/expected_result.txt").read_bytes()


def test_online_decrypt(server: Server, admin: Any) -> None:
    args = {"key": "aqUdgZ0lJnuz9yiPkoDxM6ZcTcVVpd4KKLqzbHD88Lg=", "nonce": "AAECAwQFBgcICQoL",
            "encrypted_data": "CaZd8qSMMlBp8SjSXj2I4dQIuC9KkZ5DI/ATo1sWJw==",
            "algorithm": "aes256gcm"}
    alice = party(server)
    task = run_task(alice, _builtin(admin, "builtin_online_decrypt", list(args)), args,
                    executor="builtin")
    assert (task.ok, task.return_value) == (True, b"Hello Teaclave!")


def test_private_join_and_compute_three_banks_each_own_input_and_output(
        server: Server, admin: Any, functions_dir: Path) -> None:
    banks = [party(server, attribute=f"bank-{c}") for c in "abc"]
    fid = _builtin(admin, "builtin-private-join-and-compute", ["num_user"],
                   [f"input_data{i}" for i in range(3)], [f"output_data{i}" for i in range(3)])
    inputs, outputs, locs = {}, {}, []
    for i, (bank, c) in enumerate(zip(banks, "abc", strict=True)):
        rel = f"private_join_and_compute/three_party_data/bank_{c}.enc"
        inputs[f"input_data{i}"] = ([bank], register_teaclave_fixture(bank, functions_dir, rel))
        loc = bank.client.new_output(schema=["aes-gcm-128", "teaclave-file-128",
                                             "confide-stream-256"][i])
        outputs[f"output_data{i}"] = ([bank], loc.data_id)
        locs.append(loc)
    task = run_task(banks[0], fid, {"num_user": 3}, executor="builtin", inputs=inputs,
                    outputs=outputs)
    assert task.return_value == b"3 users join the task in total."
    assert sorted(task.participants) == sorted(b.uid for b in banks)
    for i, (bank, loc) in enumerate(zip(banks, locs, strict=True)):
        got = _result(bank, task, f"output_data{i}", loc)
        assert set(got.decode().splitlines(keepends=True)) == {"c, 470000\n", "e, 5033000\n"}


def test_ordered_set_intersect_two_parties(
        server: Server, admin: Any, functions_dir: Path) -> None:
    a, b = party(server, attribute="org-a"), party(server, attribute="org-b")
    fid = _builtin(admin, "builtin-ordered-set-intersect", ["order"],
                   ["input_data1", "input_data2"], ["output_result1", "output_result2"])
    out_a, out_b = a.client.new_output(), b.client.new_output(schema="aes-gcm-256")
    task = run_task(a, fid, {"order": "ascending"}, executor="builtin", inputs={
        "input_data1": ([a], register_teaclave_fixture(
            a, functions_dir, "ordered_set_intersect/psi0.txt.enc")),
        "input_data2": ([b], register_teaclave_fixture(
            b, functions_dir, "ordered_set_intersect/psi1.txt.enc"))},
        outputs={"output_result1": ([a], out_a.data_id), "output_result2": ([b], out_b.data_id)})
    assert task.return_value == b"3 common items"
    assert _result(a, task, "output_result1", out_a) == b"0101010"
    assert _result(b, task, "output_result2", out_b) == b"01101"


def test_ordered_set_join(server: Server, admin: Any, functions_dir: Path) -> None:
    args = {"left_column": 0, "right_column": 0, "ascending": True, "drop": True}
    alice = party(server)
    fid = _builtin(admin, "builtin-ordered-set-join", list(args),
                   ["input_data1", "input_data2"], ["output_result"])
    out = alice.client.new_output()
    task = run_task(alice, fid, args, executor="builtin", inputs={
        f"input_data{i + 1}": ([alice], register_teaclave_fixture(
            alice, functions_dir, f"ordered_set_join/join{i}.csv.enc")) for i in range(2)},
        outputs={"output_result": ([alice], out.data_id)})
    assert task.return_value == b"120 records"
    assert _result(alice, task, "output_result", out) == \
        (functions_dir / "gbdt_training/train.txt").read_bytes()


def test_rsa_sign_with_teaclave_encrypted_key(
        server: Server, admin: Any, functions_dir: Path) -> None:
    alice = party(server)
    fid = _builtin(admin, "builtin-rsa-sign", ["data"], ["rsa_key"])
    task = run_task(alice, fid, {"data": "test data"}, executor="builtin", inputs={
        "rsa_key": ([alice], register_teaclave_fixture(alice, functions_dir,
                                                       "rsa_sign/rsakey.enc"))})
    assert task.ok is True, task.reason
    expected = (functions_dir / "rsa_sign/expected_rsasign.txt").read_bytes().strip()
    assert base64.b64decode(task.return_value) == base64.b64decode(expected)


def test_face_detection_with_image_bytes_as_json_array(
        server: Server, admin: Any, functions_dir: Path) -> None:
    args: dict[str, Any] = {"min_face_size": 20, "score_thresh": 2.0,
                            "pyramid_scale_factor": 0.8, "slide_window_step_x": 4,
                            "slide_window_step_y": 4}
    args["image"] = list((functions_dir / "face_detection/input.jpg").read_bytes())
    alice = party(server)
    task = run_task(alice, _builtin(admin, "builtin-face-detection", list(args)), args,
                    executor="builtin")
    assert task.ok is True, task.reason
    faces = json.loads(task.return_value)
    assert len(faces) == 29  # Teaclave's fixture count (docs/builtins.md)


def test_principal_components_analysis(
        server: Server, admin: Any, functions_dir: Path) -> None:
    args = {"n": 2, "center": True, "feature_size": 4}
    alice = party(server)
    fid = _builtin(admin, "builtin_principal_components_analysis", list(args), ["input_data"],
                   ["output_data"])
    out = alice.client.new_output(schema="teaclave-file-128")
    base = functions_dir / "princopal_components_analysis"
    task = run_task(alice, fid, args, executor="builtin",
                    inputs={"input_data": ([alice], _upload(
                        alice, (base / "input.txt").read_bytes(), "aes-gcm-128"))},
                    outputs={"output_data": ([alice], out.data_id)})
    assert task.return_value == b"transform 90 rows * 2 cols lines of data."

    def matrix(text: bytes) -> np.ndarray:
        return np.array([[float(v) for v in line.split(",")]
                         for line in text.decode().splitlines()])

    got, expected = matrix(_result(alice, task, "output_data", out)), \
        matrix((base / "expected_result.txt").read_bytes())
    assert got.shape == expected.shape == (90, 2)
    for j in range(2):
        sign = np.sign(got[:, j] @ expected[:, j])
        np.testing.assert_allclose(sign * got[:, j], expected[:, j], rtol=0, atol=1e-12)


def test_password_check_with_data_url_and_teaclave_fixture(
        server: Server, admin: Any, functions_dir: Path) -> None:
    """Teaclave's example: the password arrives as a ``data:`` URL (vectors README §B)."""
    alice = party(server)
    fid = _builtin(admin, "builtin-password-check", [], ["password", "exposed_passwords"])
    password = alice.client.register_input_file(
        "data:text/plain;base64,c+mpvRfZ0fboR0j3rTgOGDBiubSzlCt9", schema="aes-gcm-128",
        key=bytes(16), iv=bytes(12), cmac=bytes.fromhex("e84748f7ad380e183062b9b4b3942b7d"))
    exposed = register_teaclave_fixture(alice, functions_dir,
                                        "password_check/exposed_passwords.txt.enc")
    task = run_task(alice, fid, {}, executor="builtin", inputs={
        "password": ([alice], password), "exposed_passwords": ([alice], exposed)})
    assert (task.ok, task.return_value) == (True, b"true")


# --- Python with numpy, wasm from C ----------------------------------------------------------

PY_NUMPY = """
import numpy as np

def entrypoint(argv):
    rows = [l.split(',') for l in teaclave_open('table', 'rb').read().decode().split()]
    m = np.array(rows, dtype=float)
    with teaclave_open('stats', 'wb') as f:
        f.write(','.join('%.6f' % v for v in m.mean(axis=0)))
    return 'numpy %s: %d rows' % (np.__version__, m.shape[0])
"""


def test_python_function_uses_numpy_on_encrypted_data(
        server: Server, admin: Any, functions_dir: Path) -> None:
    alice = party(server)
    fid = register_function(admin, "stats", executor_type="python", inputs=["table"],
                            outputs=["stats"], payload=PY_NUMPY.encode())
    table = (functions_dir / "gbdt_training/train.txt").read_bytes()
    out = alice.client.new_output()
    task = run_task(alice, fid, {}, executor="mesapy",
                    inputs={"table": ([alice], _upload(alice, table))},
                    outputs={"stats": ([alice], out.data_id)})
    assert task.return_value == f"numpy {np.__version__}: 120 rows".encode()
    expected = np.loadtxt(functions_dir / "gbdt_training/train.txt", delimiter=",").mean(axis=0)
    got = np.array([float(v) for v in _result(alice, task, "stats", out).split(b",")])
    np.testing.assert_allclose(got, expected, atol=1e-6)


WASM_SRC = Path(__file__).resolve().parents[1] / "executors" / "wasm_src"


def _clang(source: Path, out_dir: Path) -> bytes:
    """Teaclave's recipe: ``clang --target=wasm32 -nostdlib`` (tests/executors/test_wasm_clang)."""
    clang = shutil.which("clang")
    if clang is None or shutil.which("wasm-ld") is None:
        pytest.skip("clang and wasm-ld (Debian: clang, lld) are needed")
    target = out_dir / (source.stem + ".wasm")
    subprocess.run([clang, "--target=wasm32", "-nostdlib", "-O2", "-fno-builtin",
                    "-Wl,--no-entry", "-Wl,--export-all", "-Wl,--allow-undefined",
                    "-o", str(target), str(source)], check=True, capture_output=True, timeout=120)
    return target.read_bytes()


def test_wasm_c_modules_run_through_the_platform(
        server: Server, admin: Any, functions_dir: Path, tmp_path: Path) -> None:
    a, b = party(server, attribute="org-a"), party(server, attribute="org-b")
    add = register_function(admin, "simple_add", executor_type="wamr",
                            arguments=["adder1", "adder2"],
                            payload=_clang(WASM_SRC / "simple_add.c", tmp_path))
    task = run_task(a, add, {"adder1": "3", "adder2": "4"}, executor="wamr")
    assert (task.ok, task.return_value) == (True, b"7")

    psi = register_function(admin, "ordered_psi", executor_type="wamr",
                            arguments=["input1", "input2", "output1", "output2"],
                            inputs=["psi0", "psi1"], outputs=["out1", "out2"],
                            payload=_clang(WASM_SRC / "ordered_psi.c", tmp_path))
    out_a, out_b = a.client.new_output(), b.client.new_output(schema="teaclave-file-128")
    base = functions_dir / "ordered_set_intersect"
    task = run_task(a, psi, {"input1": "psi0", "input2": "psi1", "output1": "out1",
                             "output2": "out2"}, executor="wamr", inputs={
        "psi0": ([a], register_teaclave_fixture(a, functions_dir,
                                                "ordered_set_intersect/psi0.txt.enc")),
        "psi1": ([b], _upload(b, (base / "psi1.txt").read_bytes(), "aes-gcm-128"))},
        outputs={"out1": ([a], out_a.data_id), "out2": ([b], out_b.data_id)})
    assert task.return_value == b"3"
    assert _result(a, task, "out1", out_a) == b"0101010"
    assert _result(b, task, "out2", out_b) == b"01101"


def test_register_input_from_output_chains_a_blob_store_output(server: Server, admin: Any) -> None:
    alice = party(server)
    echo_in = _upload(alice, b"chained")
    first = alice.client.new_output()
    copy = register_function(admin, "copy", executor_type="python", inputs=["in"],
                             outputs=["out"], payload=PY_COPY.encode())
    task = run_task(alice, copy, {}, executor="mesapy", inputs={"in": ([alice], echo_in)},
                    outputs={"out": ([alice], first.data_id)})
    assert task.ok is True, task.reason
    second = alice.client.new_output()
    task = run_task(alice, copy, {}, executor="mesapy",
                    inputs={"in": ([alice], alice.client.register_input_from_output(
                        first.data_id))},
                    outputs={"out": ([alice], second.data_id)})
    assert task.ok is True, task.reason
