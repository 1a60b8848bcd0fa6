"""Confidential inference with three owners (issue 17): model owner, engine owner, business.

The parties' own steps (training and exporting a model, the engines' code, the
plain local runs predictions are compared with) and the flow that walks them
through a confide server over the SDK. See ``docs/inference.md``.
"""

from ._engines import (
    ONNX_ENGINE_SOURCE,
    ONNX_SESSION_OPTIONS,
    WASM_ENGINE_WAT,
    WASM_ERRORS,
    plain_onnx_predict,
    wasm_engine,
)
from ._errors import InferenceError
from ._model import (
    IMAGE_FEATURES,
    LINEAR_MAGIC,
    DigitsSplit,
    LinearModel,
    TrainedModels,
    decode_images,
    decode_labels,
    encode_images,
    load_digits_split,
    train_models,
)
from ._scenario import (
    BUSINESS,
    ENGINE_OWNER,
    ENGINES,
    MODEL_OWNER,
    EngineRun,
    InferenceOutcome,
    Parties,
    Party,
    register_parties,
    run_scenario,
)

__all__ = [
    "BUSINESS",
    "ENGINES",
    "ENGINE_OWNER",
    "IMAGE_FEATURES",
    "LINEAR_MAGIC",
    "MODEL_OWNER",
    "ONNX_ENGINE_SOURCE",
    "ONNX_SESSION_OPTIONS",
    "WASM_ENGINE_WAT",
    "WASM_ERRORS",
    "DigitsSplit",
    "EngineRun",
    "InferenceError",
    "InferenceOutcome",
    "LinearModel",
    "Parties",
    "Party",
    "TrainedModels",
    "decode_images",
    "decode_labels",
    "encode_images",
    "load_digits_split",
    "plain_onnx_predict",
    "register_parties",
    "run_scenario",
    "train_models",
    "wasm_engine",
]
