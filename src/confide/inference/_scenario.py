"""Confidential inference with three owners, over the SDK against any confide server.

* the model owner (B) trains on the bundled digits, exports, encrypts and uploads;
* the engine owner (C) registers private inference functions whose code stays
  confidential (participants see its SHA-256 and owner only);
* the business (D) uploads encrypted images and receives the labels, encrypted
  under a key only it holds;
* every owner of something the task touches approves before it runs.

Each party is its own :class:`~confide.client.Client` session; nothing here
touches the server's side, so the same flow runs against an all-in-one server
(``confide demo --scenario inference``) or a multi-node deployment.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec

import numpy as np
import numpy.typing as npt

from ..client import Client, FunctionFile
from ..executor_registry import MESAPY, WAMR
from ._engines import ONNX_ENGINE_SOURCE, WASM_ERRORS, plain_onnx_predict, wasm_engine
from ._errors import InferenceError
from ._model import (
    DigitsSplit,
    LinearModel,
    TrainedModels,
    decode_labels,
    encode_images,
    load_digits_split,
    train_models,
)

__all__ = [
    "BUSINESS",
    "ENGINES",
    "ENGINE_OWNER",
    "MODEL_OWNER",
    "EngineRun",
    "InferenceOutcome",
    "Parties",
    "Party",
    "register_parties",
    "run_scenario",
]


@dataclass(frozen=True)
class Party:
    user_id: str
    password: str
    role: str
    attribute: str


MODEL_OWNER = Party("modelco", "modelco-pw", "DataOwner", "modelco")  # B
ENGINE_OWNER = Party("engineco", "engineco-pw", "FunctionOwner", "engineco")  # C
BUSINESS = Party("shop", "shop-pw", "DataOwner", "shop")  # D


@dataclass(frozen=True)
class Parties:
    """B, C and D of one run (the module's constants by default)."""

    model_owner: Party = MODEL_OWNER
    engine_owner: Party = ENGINE_OWNER
    business: Party = BUSINESS

    @classmethod
    def named(cls, suffix: str, password: str) -> Parties:
        """Parties of their own (``modelco-<suffix>``, ...), for a server that already has users."""
        return cls(*(Party(f"{p.user_id}-{suffix}", password, p.role, f"{p.attribute}-{suffix}")
                     for p in (MODEL_OWNER, ENGINE_OWNER, BUSINESS)))

    def __iter__(self) -> Iterator[Party]:
        return iter((self.model_owner, self.engine_owner, self.business))

#: engine name -> (function name, function executor type, task executor)
ENGINES = {"onnx": ("digits-onnxruntime", MESAPY.function_type, MESAPY.executor),
           "wasm": ("digits-linear-wasm", WAMR.function_type, WAMR.executor)}

#: Logs in as a party and returns its session.
ConnectAs = Callable[[Party], Client]
Say = Callable[[str], None]


@dataclass(frozen=True)
class EngineRun:
    """One engine's task, from the business's side."""

    engine: str
    function_id: str
    task_id: str
    model_id: str  # the model owner's input
    images_id: str  # the business's input
    labels_id: str  # the business's output
    labels: npt.NDArray[np.uint8]
    plain: npt.NDArray[np.uint8]  # the same model run plainly on the same images
    accuracy: float
    task_seconds: float  # invoke to labels decrypted

    @property
    def matches_plain(self) -> bool:
        return bool(np.array_equal(self.labels, self.plain))


@dataclass
class InferenceOutcome:
    split: DigitsSplit
    models: TrainedModels
    runs: list[EngineRun] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return len(self.runs) == len(ENGINES) and all(r.matches_plain for r in self.runs)


def register_parties(admin: Client, parties: Parties = Parties()) -> None:
    """The platform administrator (cloud A) registers B, C and D."""
    for party in parties:
        admin.register_user(party.user_id, party.password, party.role, party.attribute)


def run_scenario(connect_as: ConnectAs, say: Say, *, holdout: int = 400,
                 engines: tuple[str, ...] = tuple(ENGINES), timeout: float = 120.0,
                 parties: Parties = Parties()) -> InferenceOutcome:
    """Run the three-owner flow with the parties already registered; report through ``say``.

    Raises:
        InferenceError: a step failed (a task ended in error, labels missing).
        ClientError: the server refused a step.
    """
    unknown = set(engines) - set(ENGINES)
    if unknown:
        raise InferenceError(f"unknown engines {sorted(unknown)}; known: {', '.join(ENGINES)}")
    missing = [m for m in ("sklearn", "skl2onnx", "onnxruntime") if find_spec(m) is None]
    if missing:
        raise InferenceError(f"{', '.join(missing)} missing here: pip install "
                             f"'confide[inference]' (the server's workers need it too)")
    b, c, d = parties
    model_owner, engine_owner, business = (connect_as(p) for p in parties)
    try:
        split = load_digits_split(holdout)
        started = time.monotonic()
        models = train_models(split)
        say(f"B ({b.user_id}) trained on {len(split.train_images)} of scikit-learn's "
            f"bundled digits in {time.monotonic() - started:.1f} s: an MLP exported as ONNX "
            f"({len(models.onnx)} bytes) and a logistic regression in fixed point for the "
            f"wasm engine")
        exports = {"onnx": models.onnx, "wasm": models.linear.to_bytes()}
        model_ids = {}
        for engine in engines:
            upload = model_owner.upload_encrypted(exports[engine], file_name=f"model-{engine}")
            model_ids[engine] = model_owner.register_upload(upload)
        say(f"   B encrypted each model on its own machine and uploaded it: "
            f"{', '.join(model_ids.values())} (the keys never leave B)")
        payloads = {"onnx": ONNX_ENGINE_SOURCE.encode(), "wasm": wasm_engine()}
        function_ids = {}
        for engine in engines:
            name, executor_type, _ = ENGINES[engine]
            function_ids[engine] = engine_owner.register_function(
                name, executor_type=executor_type, public=False,
                user_allowlist=[d.attribute], payload=payloads[engine],
                description=f"classifies 8x8 digit images ({engine})",
                inputs=[FunctionFile("model"), FunctionFile("images")],
                outputs=[FunctionFile("labels")], code_review="confidential")
            digest = hashlib.sha256(payloads[engine]).hexdigest()
            say(f"C ({c.user_id}) registered the private engine {name} "
                f"({executor_type}) as {function_ids[engine]}: code confidential, "
                f"participants see SHA-256 {digest[:16]}…")
        images = encode_images(split.images)
        images_id = business.register_upload(
            business.upload_encrypted(images, file_name="images"))
        say(f"D ({d.user_id}) encrypted {len(split.images)} images ({len(images)} bytes) "
            f"and uploaded them as {images_id}")
        outcome = InferenceOutcome(split, models)
        for engine in engines:
            run = _one_task(engine, function_ids[engine], model_ids[engine], images_id,
                            exports[engine], split, model_owner, engine_owner, business,
                            say, timeout, parties)
            outcome.runs.append(run)
        return outcome
    finally:
        for client in (model_owner, engine_owner, business):
            client.close()


def _one_task(engine: str, function_id: str, model_id: str, images_id: str, model: bytes,
              split: DigitsSplit, model_owner: Client, engine_owner: Client,
              business: Client, say: Say, timeout: float, parties: Parties) -> EngineRun:
    executor = ENGINES[engine][2]
    output = business.new_output(file_name=f"labels-{engine}")
    task_id = business.create_task(
        function_id, {}, executor=executor,
        inputs_ownership={"model": [parties.model_owner.user_id],
                          "images": [parties.business.user_id]},
        outputs_ownership={"labels": [parties.business.user_id]})
    business.assign_data(task_id, inputs={"images": images_id},
                         outputs={"labels": output.data_id})
    model_owner.assign_data(task_id, inputs={"model": model_id})
    for client in (business, model_owner, engine_owner):
        client.approve_task(task_id)
    say(f"[{engine}] D created task {task_id}; D assigned its images and the labels output, "
        f"B its model; B, C and D approved")
    started = time.monotonic()
    business.invoke_task(task_id)
    task = business.wait(task_id, timeout=timeout)
    if task.ok is not True:
        raise InferenceError(f"the {engine} task ended {task.status_name}: "
                             f"{task.reason or task.return_value.decode(errors='replace')}")
    cmac = task.tags_map.get("labels")
    if cmac is None:
        raise InferenceError(f"the {engine} task wrote no labels")
    labels = decode_labels(business.download_decrypted(output, cmac), len(split.images))
    seconds = time.monotonic() - started
    result = task.return_value.decode(errors="replace")
    if engine == "wasm" and result.lstrip("-").isdigit() and int(result) < 0:
        raise InferenceError(f"the wasm engine failed: {WASM_ERRORS.get(int(result), result)}")
    plain = (plain_onnx_predict(model, split.images) if engine == "onnx"
             else LinearModel.from_bytes(model).predict(split.images))
    accuracy = float(np.mean(labels == split.labels))
    run = EngineRun(engine, function_id, task_id, model_id, images_id, output.data_id, labels,
                    plain, accuracy, seconds)
    say(f"[{engine}] it ran in {seconds:.2f} s (result {result!r}); only D could download and "
        f"decrypt the {len(labels)} labels: accuracy {accuracy:.1%}; "
        f"{'equal to' if run.matches_plain else 'DIFFERENT from'} a plain local run of the "
        f"same model on the same images")
    return run

