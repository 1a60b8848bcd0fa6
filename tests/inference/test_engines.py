"""The inference package's pieces: the model file format, and both engines run directly
in their executors (the wasm one in wasmtime, the ONNX one in the Python sandbox) on
good and hostile files."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np
import pytest

from confide.executors.python import MESAPY_EXEC_ERROR, PythonExecutor
from confide.executors.wasm import WasmExecutor
from confide.inference import (
    IMAGE_FEATURES,
    LINEAR_MAGIC,
    ONNX_ENGINE_SOURCE,
    WASM_ERRORS,
    DigitsSplit,
    InferenceError,
    LinearModel,
    TrainedModels,
    decode_images,
    decode_labels,
    encode_images,
    load_digits_split,
    plain_onnx_predict,
    train_models,
    wasm_engine,
)
from tests.executors.pysandbox_support import MemoryTaskIO, invocation, small_limits


@pytest.fixture(scope="module")
def trained() -> tuple[DigitsSplit, TrainedModels]:
    split = load_digits_split(200)
    return split, train_models(split)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[PythonExecutor]:
    with PythonExecutor(limits=small_limits(python_wall_seconds=30.0,
                                            python_cpu_seconds=20)) as executor:
        yield executor


def _wasm(model: bytes, images: bytes) -> tuple[str, MemoryTaskIO]:
    io = MemoryTaskIO({"model": model, "images": images}, ["labels"])
    return WasmExecutor().run(invocation(wasm_engine(), {}, io, executor_type="wamr")), io


def _onnx(executor: PythonExecutor, model: bytes, images: bytes) -> tuple[str, MemoryTaskIO]:
    io = MemoryTaskIO({"model": model, "images": images}, ["labels"])
    return executor.run(invocation(ONNX_ENGINE_SOURCE, {}, io)), io


# -- data formats ----------------------------------------------------------------------
def test_the_data_set_ships_inside_scikit_learn_and_is_split_the_same_way_each_time() -> None:
    a, b = load_digits_split(100), load_digits_split(100)
    assert a.images.shape == (100, IMAGE_FEATURES) and a.images.dtype == np.uint8
    assert np.array_equal(a.images, b.images) and int(a.images.max()) == 16
    with pytest.raises(InferenceError):
        load_digits_split(0)


def test_linear_model_round_trips(trained: tuple[DigitsSplit, TrainedModels]) -> None:
    model = trained[1].linear
    again = LinearModel.from_bytes(model.to_bytes())
    assert np.array_equal(again.weights, model.weights) and np.array_equal(again.bias, model.bias)


@pytest.mark.parametrize("mutate", [
    lambda b: b"XXXX" + b[4:],  # bad magic
    lambda b: b[:10],  # short header
    lambda b: b[:4] + struct.pack("<II", 0, 64) + b[12:],  # no classes
    lambda b: b[:4] + struct.pack("<II", 17, 64) + b[12:],  # too many classes
    lambda b: b[:4] + struct.pack("<II", 10, 5000) + b[12:],  # too many features
    lambda b: b[:-1],  # truncated
    lambda b: b + b"\0",  # trailing byte
])
def test_rejects_malformed_linear_model_files(
        trained: tuple[DigitsSplit, TrainedModels], mutate: object) -> None:
    data = trained[1].linear.to_bytes()
    with pytest.raises(InferenceError):
        LinearModel.from_bytes(mutate(data))  # type: ignore[operator]


def test_image_and_label_files_are_checked() -> None:
    with pytest.raises(InferenceError):
        encode_images(np.zeros((3, 63), dtype=np.uint8))
    with pytest.raises(InferenceError):
        decode_images(b"\0" * 65)
    assert decode_images(b"\1" * 128).shape == (2, 64)
    with pytest.raises(InferenceError):
        decode_labels(b"\0\1", 3)


# -- the wasm engine ---------------------------------------------------------------------
def test_wasm_engine_equals_the_plain_integer_run(trained: tuple[DigitsSplit, TrainedModels]
                                                  ) -> None:
    split, models = trained
    result, io = _wasm(models.linear.to_bytes(), encode_images(split.images))
    assert result == str(len(split.images))
    labels = np.frombuffer(io.written["labels"], dtype=np.uint8)
    assert np.array_equal(labels, models.linear.predict(split.images))
    assert np.mean(labels == split.labels) > 0.9


def test_wasm_engine_flushes_labels_past_its_buffer(trained: tuple[DigitsSplit, TrainedModels]
                                                    ) -> None:
    """More images than the engine's 4,096-label buffer: every label is still written."""
    split, models = trained
    images = np.tile(split.images, (25, 1))  # 5,000 images, read in blocks of 1,024
    result, io = _wasm(models.linear.to_bytes(), encode_images(images))
    assert result == "5000"
    assert np.array_equal(np.frombuffer(io.written["labels"], np.uint8),
                          models.linear.predict(images))


@pytest.mark.parametrize(("model", "images", "code"), [
    (b"XXXX" + bytes(8), b"", -2),  # not a linear model
    (b"CL", b"", -2),  # short header
    (LINEAR_MAGIC + struct.pack("<II", 0, 64), b"", -3),
    (LINEAR_MAGIC + struct.pack("<II", 10, 1 << 20), b"", -3),  # would overrun its memory
    (LINEAR_MAGIC + struct.pack("<II", 10, 64) + bytes(100), b"", -4),
    (None, bytes(IMAGE_FEATURES + 1), -5),  # not whole images
    (None, bytes(65536 + 10), -5),  # a whole block of images, then a ragged one
])
def test_wasm_engine_refuses_hostile_files(trained: tuple[DigitsSplit, TrainedModels],
                                           model: bytes | None, images: bytes, code: int
                                           ) -> None:
    good = trained[1].linear.to_bytes()
    result, _io = _wasm(good if model is None else model, images)
    assert result == str(code), WASM_ERRORS[code]


def test_wasm_engine_without_its_inputs_fails_cleanly() -> None:
    io = MemoryTaskIO({}, ["labels"])
    assert WasmExecutor().run(invocation(wasm_engine(), {}, io, executor_type="wamr")) == "-1"


# -- the ONNX Runtime engine, in the Python sandbox --------------------------------------
def test_onnx_engine_in_the_sandbox_equals_a_plain_onnxruntime_run(
        sandbox: PythonExecutor, trained: tuple[DigitsSplit, TrainedModels]) -> None:
    split, models = trained
    result, io = _onnx(sandbox, models.onnx, encode_images(split.images))
    assert result == f"classified {len(split.images)} images"
    labels = np.frombuffer(io.written["labels"], dtype=np.uint8)
    assert np.array_equal(labels, plain_onnx_predict(models.onnx, split.images))
    assert np.mean(labels == split.labels) > 0.9


@pytest.mark.parametrize("case", ["garbage model", "truncated model", "ragged images"])
def test_onnx_engine_refuses_hostile_files(sandbox: PythonExecutor,
                                           trained: tuple[DigitsSplit, TrainedModels],
                                           case: str) -> None:
    split, models = trained
    model, images = models.onnx, encode_images(split.images)
    if case == "garbage model":
        model = b"not an onnx model" * 10
    elif case == "truncated model":
        model = model[: len(model) // 2]
    else:
        images = images[:-1]
    result, io = _onnx(sandbox, model, images)
    assert result == MESAPY_EXEC_ERROR
    assert "labels" not in io.written


def test_onnx_runtime_default_thread_pools_run_under_the_sandbox_limits(
        sandbox: PythonExecutor, trained: tuple[DigitsSplit, TrainedModels]) -> None:
    """An engine that leaves ONNX Runtime's thread counts at their defaults (one per
    core) still runs: its threads are within RLIMIT_NPROC, its arenas within RLIMIT_AS."""
    split, models = trained
    source = "\n".join(line for line in ONNX_ENGINE_SOURCE.splitlines()
                       if "_op_num_threads" not in line and "execution_mode" not in line)
    assert source != ONNX_ENGINE_SOURCE
    io = MemoryTaskIO({"model": models.onnx, "images": encode_images(split.images)}, ["labels"])
    assert sandbox.run(invocation(source, {}, io)) == f"classified {len(split.images)} images"
    labels = np.frombuffer(io.written["labels"], dtype=np.uint8)
    assert np.mean(labels == split.labels) > 0.9


def test_onnx_runtime_in_the_sandbox_is_still_confined(sandbox: PythonExecutor) -> None:
    """Importing ONNX Runtime opens no way out: no socket, no host file."""
    source = '''
import onnxruntime as ort, socket
def entrypoint(argv):
    ort.InferenceSession  # imported (pre-imported by a waiting sandbox)
    try:
        socket.socket()
        net = "socket"
    except PermissionError:
        net = "no-socket"
    try:
        open("/etc/passwd").read()
        files = "passwd"
    except OSError:
        files = "no-passwd"
    return " ".join([ort.__version__, net, files])
'''
    io = MemoryTaskIO()
    assert sandbox.run(invocation(source, {}, io)).split()[1:] == ["no-socket", "no-passwd"]


def test_public_names_are_pinned() -> None:
    import confide.inference as inference

    assert inference.__all__ == [
        "BUSINESS", "ENGINES", "ENGINE_OWNER", "IMAGE_FEATURES", "LINEAR_MAGIC", "MODEL_OWNER",
        "ONNX_ENGINE_SOURCE", "ONNX_SESSION_OPTIONS", "WASM_ENGINE_WAT", "WASM_ERRORS",
        "DigitsSplit", "EngineRun", "InferenceError", "InferenceOutcome", "LinearModel", "Parties",
        "Party",
        "TrainedModels", "decode_images", "decode_labels", "encode_images", "load_digits_split",
        "plain_onnx_predict", "register_parties", "run_scenario", "train_models", "wasm_engine",
    ]
    for name in inference.__all__:
        assert hasattr(inference, name)


def test_without_the_inference_extra_the_flow_names_what_is_missing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is sent to any server: the check comes before the first connection."""
    import confide.inference._scenario as scenario

    real = scenario.find_spec
    monkeypatch.setattr(scenario, "find_spec",
                        lambda name: None if name == "onnxruntime" else real(name))

    def connect_as(_party: object) -> object:
        raise AssertionError("must not connect")

    with pytest.raises(InferenceError, match=r"onnxruntime missing here: pip install "
                                             r"'confide\[inference\]'"):
        scenario.run_scenario(connect_as, print)  # type: ignore[arg-type]
    with pytest.raises(InferenceError, match="unknown engines"):
        scenario.run_scenario(connect_as, print, engines=("tvm",))  # type: ignore[arg-type]
