"""The engine owner's code: what it registers as private (confidential) functions.

Two engines, both reading the inputs ``model`` and ``images`` and writing the
output ``labels`` (one byte per image); the result says only how many images
were classified, which every participant may see:

* :data:`ONNX_ENGINE_SOURCE`: a ``mesapy`` (Python) function running ONNX
  Runtime in the sandbox, single-threaded and sequential, so that its result is
  the same as a plain local run with :data:`ONNX_SESSION_OPTIONS`;
* :func:`wasm_engine`: a ``wamr`` module, written in WebAssembly text and
  assembled by wasmtime's ``wat2wasm`` (no toolchain needed), that evaluates a
  fixed-point linear model (``_model.LinearModel``) with exact integer
  arithmetic.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ._errors import InferenceError
from ._model import IMAGE_FEATURES

__all__ = [
    "ONNX_ENGINE_SOURCE",
    "ONNX_SESSION_OPTIONS",
    "WASM_ENGINE_WAT",
    "WASM_ERRORS",
    "plain_onnx_predict",
    "wasm_engine",
]

#: Session options the engine uses inside the sandbox and the plain run uses locally.
ONNX_SESSION_OPTIONS = {"intra_op_num_threads": 1, "inter_op_num_threads": 1}

ONNX_ENGINE_SOURCE = f'''\
"""ONNX Runtime image classifier: inputs model (ONNX) and images (n x {IMAGE_FEATURES} bytes),
output labels (one byte per image)."""
import numpy as np
import onnxruntime as ort


def entrypoint(argv):
    options = ort.SessionOptions()
    options.intra_op_num_threads = {ONNX_SESSION_OPTIONS["intra_op_num_threads"]}
    options.inter_op_num_threads = {ONNX_SESSION_OPTIONS["inter_op_num_threads"]}
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    with teaclave_open("model", "rb") as f:
        model = f.read()
    with teaclave_open("images", "rb") as f:
        pixels = f.read()
    if len(pixels) % {IMAGE_FEATURES}:
        raise ValueError("images must be n x {IMAGE_FEATURES} bytes")
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    images = np.frombuffer(pixels, dtype=np.uint8).reshape(-1, {IMAGE_FEATURES})
    labels = session.run(None, {{session.get_inputs()[0].name: images.astype(np.float32)}})[0]
    with teaclave_open("labels", "wb") as f:
        f.write(np.asarray(labels, dtype=np.uint8).tobytes())
    return "classified %d images" % len(images)
'''

#: What a negative result of the wasm engine means.
WASM_ERRORS = {
    -1: "cannot open model, images or labels",
    -2: "not a linear model file (bad magic or short header)",
    -3: "linear model sizes out of bounds",
    -4: "linear model file is short",
    -5: "images file is not a whole number of images",
    -6: "cannot write labels",
}

# Memory (7 pages): names at 16/32/48, header at 64, weights+bias at 1024 (<= 16*4096*4 + 64
# bytes), a block of whole images at 320000 (<= 65536 bytes: one read per block, not per
# image), the label buffer at 393216 (4096 labels).
WASM_ENGINE_WAT = """\
(module
  (import "env" "teaclave_open_input" (func $open_input (param i32) (result i32)))
  (import "env" "teaclave_create_output" (func $create_output (param i32) (result i32)))
  (import "env" "teaclave_read_file" (func $read (param i32 i32 i32) (result i32)))
  (import "env" "teaclave_write_file" (func $write (param i32 i32 i32) (result i32)))
  (import "env" "teaclave_close_file" (func $close (param i32) (result i32)))
  (memory (export "memory") 7)
  (data (i32.const 16) "model\\00")
  (data (i32.const 32) "images\\00")
  (data (i32.const 48) "labels\\00")
  (global $W i32 (i32.const 1024))
  (global $IMG i32 (i32.const 320000))
  (global $IMG_CAP i32 (i32.const 65536))
  (global $OUT i32 (i32.const 393216))
  (global $OUT_CAP i32 (i32.const 4096))

  ;; read exactly len bytes unless the file ends first; the count read
  (func $read_full (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
    (local $got i32) (local $n i32)
    (block $done
      (loop $more
        (br_if $done (i32.ge_u (local.get $got) (local.get $len)))
        (local.set $n (call $read (local.get $fd)
          (i32.add (local.get $ptr) (local.get $got))
          (i32.sub (local.get $len) (local.get $got))))
        (br_if $done (i32.le_s (local.get $n) (i32.const 0)))
        (local.set $got (i32.add (local.get $got) (local.get $n)))
        (br $more)))
    (local.get $got))

  ;; argmax over classes of bias[c] + sum_f w[c][f] * pixel[f] (int64, first maximum)
  (func $classify (param $classes i32) (param $feats i32) (param $img i32) (result i32)
    (local $c i32) (local $f i32) (local $row i32) (local $acc i64) (local $best i64)
    (local $label i32)
    (local.set $best (i64.const 0x8000000000000000))
    (block $classes_done
      (loop $class
        (br_if $classes_done (i32.ge_u (local.get $c) (local.get $classes)))
        (local.set $row (i32.add (global.get $W)
          (i32.shl (i32.mul (local.get $c) (local.get $feats)) (i32.const 2))))
        (local.set $acc (i64.extend_i32_s (i32.load (i32.add (global.get $W)
          (i32.shl (i32.add (i32.mul (local.get $classes) (local.get $feats)) (local.get $c))
                   (i32.const 2))))))
        (local.set $f (i32.const 0))
        (block $feats_done
          (loop $feat
            (br_if $feats_done (i32.ge_u (local.get $f) (local.get $feats)))
            (local.set $acc (i64.add (local.get $acc)
              (i64.mul
                (i64.extend_i32_s (i32.load (i32.add (local.get $row)
                  (i32.shl (local.get $f) (i32.const 2)))))
                (i64.extend_i32_u (i32.load8_u (i32.add (local.get $img) (local.get $f)))))))
            (local.set $f (i32.add (local.get $f) (i32.const 1)))
            (br $feat)))
        (if (i64.gt_s (local.get $acc) (local.get $best))
          (then (local.set $best (local.get $acc)) (local.set $label (local.get $c))))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $class)))
    (local.get $label))

  (func (export "entrypoint") (param $argc i32) (param $argv i32) (result i32)
    (local $model i32) (local $images i32) (local $labels i32) (local $classes i32)
    (local $feats i32) (local $size i32) (local $n i32) (local $count i32) (local $pending i32)
    (local $block i32) (local $img i32) (local $end i32)
    (local.set $model (call $open_input (i32.const 16)))
    (local.set $images (call $open_input (i32.const 32)))
    (local.set $labels (call $create_output (i32.const 48)))
    (if (i32.or (i32.lt_s (local.get $model) (i32.const 0))
          (i32.or (i32.lt_s (local.get $images) (i32.const 0))
                  (i32.lt_s (local.get $labels) (i32.const 0))))
      (then (return (i32.const -1))))
    ;; header: "CLM1", classes, features
    (if (i32.ne (call $read_full (local.get $model) (i32.const 64) (i32.const 12)) (i32.const 12))
      (then (return (i32.const -2))))
    (if (i32.ne (i32.load (i32.const 64)) (i32.const 0x314d4c43))
      (then (return (i32.const -2))))
    (local.set $classes (i32.load (i32.const 68)))
    (local.set $feats (i32.load (i32.const 72)))
    (if (i32.or (i32.or (i32.lt_u (local.get $classes) (i32.const 1))
                        (i32.gt_u (local.get $classes) (i32.const 16)))
                (i32.or (i32.lt_u (local.get $feats) (i32.const 1))
                        (i32.gt_u (local.get $feats) (i32.const 4096))))
      (then (return (i32.const -3))))
    (local.set $size (i32.shl (i32.add (i32.mul (local.get $classes) (local.get $feats))
                                       (local.get $classes)) (i32.const 2)))
    (if (i32.ne (call $read_full (local.get $model) (global.get $W) (local.get $size))
                (local.get $size))
      (then (return (i32.const -4))))
    (drop (call $close (local.get $model)))
    ;; images are read a block of whole images at a time
    (local.set $block (i32.mul (local.get $feats) (i32.div_u (global.get $IMG_CAP)
                                                            (local.get $feats))))
    (block $eof
      (loop $read_block
        (local.set $n (call $read_full (local.get $images) (global.get $IMG) (local.get $block)))
        (br_if $eof (i32.eqz (local.get $n)))
        (if (i32.rem_u (local.get $n) (local.get $feats)) (then (return (i32.const -5))))
        (local.set $img (global.get $IMG))
        (local.set $end (i32.add (global.get $IMG) (local.get $n)))
        (block $block_done
          (loop $image
            (br_if $block_done (i32.ge_u (local.get $img) (local.get $end)))
            (i32.store8 (i32.add (global.get $OUT) (local.get $pending))
                        (call $classify (local.get $classes) (local.get $feats) (local.get $img)))
            (local.set $img (i32.add (local.get $img) (local.get $feats)))
            (local.set $pending (i32.add (local.get $pending) (i32.const 1)))
            (local.set $count (i32.add (local.get $count) (i32.const 1)))
            (if (i32.eq (local.get $pending) (global.get $OUT_CAP))
              (then
                (if (i32.ne (call $write (local.get $labels) (global.get $OUT)
                                         (local.get $pending))
                            (local.get $pending))
                  (then (return (i32.const -6))))
                (local.set $pending (i32.const 0))))
            (br $image)))
        (br_if $eof (i32.lt_u (local.get $n) (local.get $block)))
        (br $read_block)))
    (if (i32.gt_u (local.get $pending) (i32.const 0))
      (then
        (if (i32.ne (call $write (local.get $labels) (global.get $OUT) (local.get $pending))
                    (local.get $pending))
          (then (return (i32.const -6))))))
    (drop (call $close (local.get $images)))
    (drop (call $close (local.get $labels)))
    (local.get $count))
)
"""


def wasm_engine() -> bytes:
    """The wasm engine, assembled from :data:`WASM_ENGINE_WAT`."""
    import wasmtime

    return bytes(wasmtime.wat2wasm(WASM_ENGINE_WAT))


def plain_onnx_predict(model: bytes, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The plain local run of an ONNX model, with the engine's session options."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise InferenceError("onnxruntime is needed: pip install 'confide[inference]'") from e
    options: Any = ort.SessionOptions()
    options.intra_op_num_threads = ONNX_SESSION_OPTIONS["intra_op_num_threads"]
    options.inter_op_num_threads = ONNX_SESSION_OPTIONS["inter_op_num_threads"]
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    labels = session.run(None, {session.get_inputs()[0].name: images.astype(np.float32)})[0]
    return np.asarray(labels, dtype=np.uint8)
