"""Offline validation of deploy/k8s and deploy/Dockerfile.

No cluster and no kubeconform here: every manifest is validated against the bundled
JSON Schema deploy/k8s/schemas/k8s-subset.schema.json (the fields these manifests use,
typed and closed to unknown keys), and cross-checked for what a schema cannot see:
selectors that select the pods, Service ports that name container ports, the Dask
address the jobs use, the container names the training operator expects, commands
that run files and flags that exist, and an image built from this repository.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SCHEMA = json.loads((K8S / "schemas" / "k8s-subset.schema.json").read_text())
IMAGE = "qstore-pl:0.1.0"


def _documents():
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


DOCS = _documents()


def _pod_templates(doc):
    spec = doc["spec"]
    if doc["kind"] == "Deployment":
        return [spec["template"]]
    replicas = spec.get("pytorchReplicaSpecs") or spec.get("tfReplicaSpecs") or {}
    return [r["template"] for r in replicas.values()]


def _containers(doc):
    return [c for t in _pod_templates(doc) for c in t["spec"]["containers"]]


def test_manifests_cover_the_three_workloads():
    kinds = sorted((name, doc["kind"]) for name, doc in DOCS)
    assert kinds == [
        ("dask-cluster.yaml", "Deployment"),
        ("dask-cluster.yaml", "Deployment"),
        ("dask-cluster.yaml", "Service"),
        ("pytorchjob.yaml", "PyTorchJob"),
        ("tfjob.yaml", "TFJob"),
    ]


@pytest.mark.parametrize(("name", "doc"), DOCS, ids=[f"{n}:{d['kind']}" for n, d in DOCS])
def test_manifest_matches_the_bundled_schema(name, doc):
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)


def test_schema_is_valid_and_rejects_typos_and_bad_values():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    job = next(doc for _, doc in DOCS if doc["kind"] == "PyTorchJob")
    broken = [copy.deepcopy(job) for _ in range(4)]
    broken[0]["spec"]["pytorchReplicaSpecs"]["Worker"]["replica"] = 2  # typo
    container = broken[1]["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    container["containers"][0]["resources"]["limits"]["memory"] = "4 gigs"
    broken[2]["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = 2  # one master only
    broken[3]["apiVersion"] = "kubeflow.org/v2"
    for doc in broken:
        assert not validator.is_valid(doc)


def test_selectors_select_their_pods_and_services_name_container_ports():
    deployments = [doc for _, doc in DOCS if doc["kind"] == "Deployment"]
    for doc in deployments:
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for service in (doc for _, doc in DOCS if doc["kind"] == "Service"):
        selected = [
            d
            for d in deployments
            if service["spec"]["selector"].items()
            <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, service["metadata"]["name"]
        port_names = {p.get("name") for c in _containers(selected[0]) for p in c["ports"]}
        port_numbers = {p["containerPort"] for c in _containers(selected[0]) for p in c["ports"]}
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert target in (port_names if isinstance(target, str) else port_numbers)


def test_dask_address_everywhere_is_the_scheduler_service():
    service = next(doc for _, doc in DOCS if doc["kind"] == "Service")
    comm = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "comm")
    address = f"tcp://{service['metadata']['name']}:{comm}"
    scheduler, worker = (
        doc["spec"]["template"]["spec"]["containers"][0]
        for _, doc in DOCS
        if doc["kind"] == "Deployment"
    )
    assert f"--port {comm}" in " ".join(scheduler["command"])
    assert worker["command"][:3] == ["dask", "worker", address]
    for _, doc in DOCS:
        for container in _containers(doc):
            for env in container.get("env", []):
                if env["name"] == "QSTORE_DASK_ADDRESS":
                    assert env["value"] == address


def test_training_jobs_follow_the_operator_conventions():
    for _, doc in DOCS:
        if doc["kind"] not in ("PyTorchJob", "TFJob"):
            continue
        expected = "pytorch" if doc["kind"] == "PyTorchJob" else "tensorflow"
        for container in _containers(doc):
            assert container["name"] == expected  # the operator finds its container by name
        if doc["kind"] == "TFJob":  # the operator's default port for TF_CONFIG
            ports = [p["containerPort"] for c in _containers(doc) for p in c["ports"]]
            assert ports == [2222] * len(ports)


def test_commands_run_files_and_flags_that_exist():
    for _, doc in DOCS:
        for container in _containers(doc):
            command = container["command"]
            if command[0] != "python":
                assert command[0] == "dask"
                continue
            script = ROOT / command[1]
            assert script.is_file(), command[1]
            source = script.read_text()
            for flag in (arg for arg in command[2:] if arg.startswith("--")):
                assert f'"{flag}"' in source, f"{command[1]} has no {flag} option"


def test_resources_requests_equal_limits_and_every_pod_uses_the_image():
    for _, doc in DOCS:
        for container in _containers(doc):
            assert container["image"] == IMAGE
            resources = container["resources"]
            # Guaranteed QoS: simulators are CPU bound, and a throttled pod skews routing
            assert resources["requests"] == resources["limits"]


def test_dockerfile_builds_this_repository_with_existing_extras():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert f"-t {IMAGE}" in dockerfile  # the build command documents the tag the pods use
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            *sources, _ = shlex.split(line)[1:]
            for source in sources:
                assert (ROOT / source).exists(), source
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    (wanted,) = re.findall(r'pip install "\.\[([a-z,]+)\]"', dockerfile)
    for extra in wanted.split(","):
        assert extra in extras, extra
    assert "dask" in wanted and "torch==2.13.0" in dockerfile and "/whl/cpu" in dockerfile
