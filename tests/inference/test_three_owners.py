"""Confidential inference with three owners, through the SDK against a real server.

One server (``confide serve`` in a subprocess, SQLite, two sandboxed workers)
runs the whole flow once: the model owner B trains and uploads, the engine
owner C registers both private engines, the business D uploads images and gets
the labels. Then each party tries to reach what is not its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from confide.client import Client
from confide.inference import (
    BUSINESS,
    ENGINE_OWNER,
    MODEL_OWNER,
    ONNX_ENGINE_SOURCE,
    EngineRun,
    InferenceOutcome,
    Party,
    register_parties,
    run_scenario,
    wasm_engine,
)
from tests.platform._helpers import expect_error
from tests.platform._server import Server

pytestmark = pytest.mark.slow


@dataclass
class World:
    server: Server
    outcome: InferenceOutcome
    said: list[str]

    def login(self, party: Party) -> Client:
        return self.server.client(party.user_id, party.password)

    def run(self, engine: str) -> EngineRun:
        return next(r for r in self.outcome.runs if r.engine == engine)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    server = Server(tmp_path_factory.mktemp("inference") / "data").start()
    try:
        with server.admin() as admin:
            register_parties(admin)
        said: list[str] = []
        outcome = run_scenario(lambda p: server.client(p.user_id, p.password), said.append)
        yield World(server, outcome, said)
    finally:
        server.stop()


@pytest.mark.parametrize("engine", ["onnx", "wasm"])
def test_labels_reach_the_business_and_equal_a_plain_local_run(world: World, engine: str) -> None:
    run = world.run(engine)
    assert run.labels.shape == (len(world.outcome.split.images),)
    assert np.array_equal(run.labels, run.plain)
    assert run.accuracy > 0.9  # a real model on real images, not a constant
    assert len(set(run.labels.tolist())) == 10


def test_onnx_engine_agrees_with_the_model_owners_own_scikit_learn_model(world: World) -> None:
    split, models = world.outcome.split, world.outcome.models
    sklearn_labels = models.mlp.predict(split.images.astype(np.float32)).astype(np.uint8)
    assert np.array_equal(world.run("onnx").labels, sklearn_labels)
    assert np.array_equal(world.run("wasm").labels,
                          models.linear.predict(split.images))


def test_every_owner_had_to_approve_and_the_result_carries_no_label(world: World) -> None:
    with world.login(BUSINESS) as shop:
        for run in world.outcome.runs:
            task = shop.get_task(run.task_id)
            assert set(task.approved_users) == {MODEL_OWNER.user_id, ENGINE_OWNER.user_id,
                                                BUSINESS.user_id}
            assert task.outputs_ownership == {"labels": [BUSINESS.user_id]}
            assert task.return_value in (b"classified 400 images", b"400")


# -- the model owner B: no images, no labels -------------------------------------------
@pytest.mark.parametrize("engine", ["onnx", "wasm"])
def test_model_owner_cannot_get_the_business_images_or_labels(world: World, engine: str) -> None:
    run = world.run(engine)
    with world.login(MODEL_OWNER) as b:
        expect_error("PERMISSION_DENIED", None, lambda: b.get_input_file(run.images_id))
        expect_error("PERMISSION_DENIED", None, lambda: b.get_output_file(run.labels_id))
        expect_error("PERMISSION_DENIED", None,
                     lambda: b.register_input_from_output(run.labels_id))


def test_model_owner_cannot_run_the_engine_on_the_business_images(world: World) -> None:
    run = world.run("onnx")
    with world.login(MODEL_OWNER) as b:
        # The engine is private to the business: B may not create a task with it ...
        expect_error("PERMISSION_DENIED", None,
                     lambda: b.create_task(run.function_id, {}, executor="mesapy"))
    with world.login(BUSINESS) as d:
        tid = d.create_task(run.function_id, {}, executor="mesapy",
                            inputs_ownership={"model": [MODEL_OWNER.user_id],
                                              "images": [BUSINESS.user_id]},
                            outputs_ownership={"labels": [BUSINESS.user_id]})
    with world.login(MODEL_OWNER) as b:
        # ... nor assign D's images (or the labels output) to a task of D's in D's place.
        expect_error("PERMISSION_DENIED", None,
                     lambda: b.assign_data(tid, inputs={"images": run.images_id}))
        expect_error("PERMISSION_DENIED", None,
                     lambda: b.assign_data(tid, outputs={"labels": run.labels_id}))


# -- the business D: no weights, no engine code ------------------------------------------
@pytest.mark.parametrize("engine", ["onnx", "wasm"])
def test_business_cannot_download_the_weights(world: World, engine: str) -> None:
    run = world.run(engine)
    with world.login(BUSINESS) as d:
        expect_error("PERMISSION_DENIED", None, lambda: d.get_input_file(run.model_id))
        # A new task of D's own with B's model assigned by D: refused, only B assigns it.
        tid = d.create_task(run.function_id, {}, executor=_executor(engine),
                            inputs_ownership={"model": [BUSINESS.user_id],
                                              "images": [BUSINESS.user_id]},
                            outputs_ownership={"labels": [BUSINESS.user_id]})
        expect_error("PERMISSION_DENIED", None,
                     lambda: d.assign_data(tid, inputs={"model": run.model_id}))


@pytest.mark.parametrize("engine", ["onnx", "wasm"])
def test_business_cannot_read_the_engine_code_only_its_hash(world: World, engine: str) -> None:
    run = world.run(engine)
    code = ONNX_ENGINE_SOURCE.encode() if engine == "onnx" else wasm_engine()
    with world.login(BUSINESS) as d:
        assert d.get_function(run.function_id).payload == b""
        review = d.review_task(run.task_id)
        assert review.function.code_review == "confidential"
        assert not review.function.payload_visible and review.function.payload == b""
        assert review.function.payload_sha256 == hashlib.sha256(code).digest()
        expect_error("PERMISSION_DENIED", None,
                     lambda: d.set_code_review(run.function_id, "open"))


# -- the engine owner C: neither weights nor images (nor labels) -----------------------------
@pytest.mark.parametrize("engine", ["onnx", "wasm"])
def test_engine_owner_sees_neither_weights_nor_images(world: World, engine: str) -> None:
    run = world.run(engine)
    with world.login(ENGINE_OWNER) as c:
        expect_error("PERMISSION_DENIED", None, lambda: c.get_input_file(run.model_id))
        expect_error("PERMISSION_DENIED", None, lambda: c.get_input_file(run.images_id))
        expect_error("PERMISSION_DENIED", None, lambda: c.get_output_file(run.labels_id))
        expect_error("PERMISSION_DENIED", None,
                     lambda: c.register_input_from_output(run.labels_id))
        # A function owner creates no tasks of its own (Teaclave's roles) ...
        expect_error("PERMISSION_DENIED", None,
                     lambda: c.create_task(run.function_id, {}, executor=_executor(engine)))
    with world.login(BUSINESS) as d:
        tid = d.create_task(run.function_id, {}, executor=_executor(engine),
                            inputs_ownership={"model": [MODEL_OWNER.user_id],
                                              "images": [BUSINESS.user_id]},
                            outputs_ownership={"labels": [BUSINESS.user_id]})
    with world.login(ENGINE_OWNER) as c:
        # ... and may not assign B's model or D's images, nor the labels, to D's task.
        for inputs in ({"model": run.model_id}, {"images": run.images_id}):
            expect_error("PERMISSION_DENIED", None,
                         lambda i=inputs: c.assign_data(tid, inputs=i))
        expect_error("PERMISSION_DENIED", None,
                     lambda: c.assign_data(tid, outputs={"labels": run.labels_id}))


def test_the_stored_ciphertext_is_not_the_plaintext(world: World, tmp_path: Path) -> None:
    """What the blob store (cloud A's disk) holds of D's images is not D's images."""
    import httpx

    images = bytes(world.outcome.split.images.tobytes())
    with world.login(BUSINESS) as d:
        upload = d.upload_encrypted(images, file_name="probe")
    stored = httpx.get(upload.url, timeout=10).content
    assert len(stored) >= len(images)
    assert images[:64] not in stored and stored != images


def _executor(engine: str) -> str:
    return {"onnx": "mesapy", "wasm": "wamr"}[engine]


def test_the_demo_runs_on_a_running_server_with_parties_of_its_own(world: World) -> None:
    """``confide demo --scenario inference --server DIR``: the same flow against a server
    that already runs (here the one above, which already has modelco, engineco and shop),
    attested with its trust files, twice in a row."""
    import os
    import subprocess
    import sys

    server = world.server
    args = [sys.executable, "-m", "confide", "demo", "--scenario", "inference",
            "--server", str(server.data_dir), "--host", "127.0.0.1",
            "--authentication-port", str(server.ports["authentication"]),
            "--frontend-port", str(server.ports["frontend"])]
    env = {**os.environ, "COLUMNS": "200", "CONFIDE_ADMIN_PASSWORD": "teaclave"}
    for _ in range(2):
        proc = subprocess.run(args, capture_output=True, text=True, timeout=240, env=env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "using the running server" in proc.stdout
        assert "registered modelco-" in proc.stdout
        assert proc.stdout.count("equal to a plain local run") == 2
        assert "demo finished" in proc.stdout
    env["CONFIDE_ADMIN_PASSWORD"] = "wrong"
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1
    assert "the scenario failed" in proc.stdout and "Traceback" not in proc.stderr
