"""The deployment definitions (deploy/): rendered and checked offline.

There is no cluster and no container daemon here, so the Kubernetes manifests
are rendered with ``kubectl kustomize`` and validated against the Kubernetes
OpenAPI schemas that kubernetes-validate ships (strict: an unknown field is an
error); the compose file is checked for what compose itself would refuse and
for what confide needs. Every ``confide`` command line in them is parsed by the
installed CLI, so a manifest cannot name an option that does not exist.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CONFIDE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "confide"
K8S_VERSION = "1.31.0"  # the oldest release with user namespaces (hostUsers) on by default is 1.33;
# 1.31's schema has every field used here, so the manifests work from there on.


def _confide_cli() -> str:
    found = shutil.which("confide")
    return str(CONFIDE) if CONFIDE.exists() else (found or "confide")


def _render(path: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render the kustomizations")
    out = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return _render(DEPLOY / "k8s" / "base")


@pytest.fixture(scope="module")
def coco() -> list[dict[str, Any]]:
    return _render(DEPLOY / "k8s" / "overlays" / "coco")


def _workloads(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet")}


def _main_container(workload: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _accepted_by_cli(args: list[str]) -> None:
    """The installed CLI parses ``args`` (option names and arity), without running it."""
    out = subprocess.run([_confide_cli(), *args, "--help"], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, f"confide {' '.join(args)}: {out.stdout}{out.stderr}"


@pytest.mark.parametrize("overlay", ["base", "coco"])
def test_every_object_is_valid_for_kubernetes(overlay: str, request: pytest.FixtureRequest) -> None:
    docs = request.getfixturevalue(overlay)
    assert docs
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {e.message} at {list(e.path)}")


def test_each_role_is_its_own_workload(base: list[dict[str, Any]]) -> None:
    workloads = _workloads(base)
    assert set(workloads) == {"authentication", "frontend", "scheduler", "keys", "worker",
                              "postgres"}
    # client-facing roles, the scheduler and the workers are replicated; the key service is one
    # replica (its volume holds the sealed root secret; running nodes do not need it), and so is
    # the database
    for name in ("authentication", "frontend", "scheduler", "worker"):
        assert workloads[name]["spec"]["replicas"] >= 2, name
        assert any(d["kind"] == "PodDisruptionBudget" and d["metadata"]["name"] == name
                   for d in base) or name == "worker"
    keys = workloads["keys"]
    assert keys["kind"] == "StatefulSet" and keys["spec"]["volumeClaimTemplates"]
    # every other control-plane node joins through the key service
    for name in ("authentication", "frontend", "scheduler"):
        args = _main_container(workloads[name])["args"]
        assert args[args.index("--keys") + 1] == "keys:17781", name
        assert args[args.index("--services") + 1] == name
    # the frontend replicas share the blob store's volume
    claims = [v["persistentVolumeClaim"]["claimName"]
              for v in workloads["frontend"]["spec"]["template"]["spec"]["volumes"]
              if "persistentVolumeClaim" in v]
    pvc = next(d for d in base if d["kind"] == "PersistentVolumeClaim" and
               d["metadata"]["name"] == claims[0])
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_every_command_line_is_one_the_cli_accepts(base: list[dict[str, Any]]) -> None:
    for name, workload in _workloads(base).items():
        if name == "postgres":
            continue
        container = _main_container(workload)
        _accepted_by_cli(container["args"])
        for probe in ("readinessProbe", "livenessProbe"):
            command = container.get(probe, {}).get("exec", {}).get("command")
            if command:
                assert command[0] == "confide"
                _accepted_by_cli(command[1:])


def test_control_plane_runs_non_root_and_read_only(base: list[dict[str, Any]]) -> None:
    for name, workload in _workloads(base).items():
        if name in ("worker", "postgres"):
            continue
        pod = workload["spec"]["template"]["spec"]
        container = _main_container(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["automountServiceAccountToken"] is False, name
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"], name
        assert container["readinessProbe"] and container["livenessProbe"], name
        assert container["resources"]["limits"]["memory"], name


def test_the_worker_root_is_confined_to_a_user_namespace(base: list[dict[str, Any]]) -> None:
    worker = _workloads(base)["worker"]
    pod = worker["spec"]["template"]["spec"]
    sc = _main_container(worker)["securityContext"]
    assert sc["runAsUser"] == 0
    assert pod["hostUsers"] is False  # its root is not the node's
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
    assert "SYS_ADMIN" in sc["capabilities"]["add"] and "privileged" not in sc
    # the sandbox uids must lie inside the 65536 ids a user-namespaced pod maps
    limits = tomllib.loads((DEPLOY / "k8s" / "base" / "confide.toml").read_text())["limits"]
    assert limits["python_sandbox_uid_base"] > 0
    assert limits["python_sandbox_uid_base"] + limits["python_sandbox_uid_count"] <= 65536
    # and the workers never see the database's credentials
    env = {e["name"] for e in _main_container(worker).get("env", [])}
    assert "CONFIDE_DATABASE_URL" not in env


def test_the_configuration_is_one_confide_accepts(tmp_path: Path) -> None:
    toml = DEPLOY / "k8s" / "base" / "confide.toml"
    out = subprocess.run([_confide_cli(), "config", "show", "--config", str(toml), "--format",
                          "json"], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert "frontend.confide.svc" in out.stdout and "keys.confide.svc" in out.stdout


def test_coco_overlay_puts_every_confide_pod_in_a_tee(coco: list[dict[str, Any]]) -> None:
    classes = {d["metadata"]["name"] for d in coco if d["kind"] == "RuntimeClass"}
    for name, workload in _workloads(coco).items():
        runtime = workload["spec"]["template"]["spec"].get("runtimeClassName")
        if name == "postgres":
            assert runtime is None  # untrusted by design: rows are MAC-protected
        else:
            assert runtime in classes, name


def test_internal_ports_are_closed_to_clients(base: list[dict[str, Any]]) -> None:
    policies = {d["metadata"]["name"]: d for d in base if d["kind"] == "NetworkPolicy"}
    assert policies["default-deny-ingress"]["spec"]["podSelector"] == {}
    internal = policies["scheduler"]["spec"]["podSelector"]["matchExpressions"][0]["values"]
    assert sorted(internal) == ["keys", "scheduler"]
    sources = policies["scheduler"]["spec"]["ingress"][0]["from"]
    selectors = [s["podSelector"]["matchLabels"] for s in sources]
    assert {"app.kubernetes.io/name": "worker"} in selectors
    pg = policies["postgres"]["spec"]["ingress"][0]["from"]
    assert [s["podSelector"]["matchLabels"] for s in pg] == [{"confide.dev/tier": "control-plane"}]


def _without_name(args: list[str]) -> list[str]:
    """A worker's arguments without ``--name`` (the pod's name; compose uses the container's)."""
    if "--name" not in args:
        return args
    i = args.index("--name")
    return args[:i] + args[i + 2:]


# ---- compose -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    return doc


def test_compose_runs_the_same_roles_as_kubernetes(compose: dict[str, Any],
                                                   base: list[dict[str, Any]]) -> None:
    services = compose["services"]
    workloads = _workloads(base)
    for name, service in services.items():
        assert name in workloads, name
        if name == "postgres":
            continue
        assert service["command"] == _without_name(_main_container(workloads[name])["args"]), name
        assert service["image"].startswith("confide:")
        health = service.get("healthcheck", {}).get("test")
        if health:
            assert health[:2] == ["CMD", "confide"]
            _accepted_by_cli(health[2:])
    worker = services["worker"]
    assert "CONFIDE_DATABASE_URL" not in worker["environment"]
    assert worker["cap_drop"] == ["ALL"] and "privileged" not in worker


def test_compose_references_only_what_exists(compose: dict[str, Any]) -> None:
    volumes = set(compose.get("volumes", {}))
    for name, service in compose["services"].items():
        for dep in service.get("depends_on", {}):
            assert dep in compose["services"], f"{name} depends on unknown {dep}"
        for mount in service.get("volumes", []):
            source = mount["source"] if isinstance(mount, dict) else mount.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / "compose" / source).resolve().exists(), f"{name}: {source}"
            else:
                assert source in volumes, f"{name}: unknown volume {source}"


def test_the_image_is_non_root_with_the_sandbox_tools() -> None:
    text = (DEPLOY / "container" / "Containerfile").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and
             not line.lstrip().startswith("#")]
    users = [line for line in lines if line.startswith("USER ")]
    assert users and users[-1] != "USER root" and not users[-1].startswith("USER 0")
    for tool in ("bubblewrap", "util-linux", "tini"):
        assert tool in text
    assert "[postgres]" in text
    froms = [line for line in lines if line.startswith("FROM ")]
    assert all(":" in f.split()[1] and not f.split()[1].endswith(":latest") for f in froms)
