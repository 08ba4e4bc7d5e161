"""Static checks of the deployment artifacts in deploy/ (docker, compose, k8s).

No Docker engine or cluster runs here, so this is what can be proved without one: every file parses, the
compose file passes a strict Compose-spec parser, the Kubernetes manifests pass the JSON schemas that
kubernetes-validate ships, promtool/amtool accept the Prometheus and Alertmanager configs, images are pinned,
and the pieces agree with each other and with `stream.settings.Settings` (ports, names, env vars).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from stream.health import Health
from stream.local.triton import free_ports
from stream.metrics import serve
from stream.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
RULES = DEPLOY / "prometheus" / "liftstream-rules.yml"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
KUBERNETES_VERSION = "1.30"
# The defaults as written in stream/settings.py, whatever LIFTSTREAM_* variables this shell has.
DEFAULTS = Settings.model_construct()

pytestmark = pytest.mark.unit


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def tool(name: str) -> str:
    found = shutil.which(name) or f"/usr/bin/{name}"
    if not Path(found).exists():
        pytest.skip(f"{name} not installed (Debian: apt-get install prometheus prometheus-alertmanager)")
    return found


def run_tool(*args: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def pinned(image: str) -> bool:
    """`name:tag` with a tag other than latest, or a digest."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def compose() -> dict[str, Any]:
    return yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())


def k8s(kind: str, name: str) -> dict[str, Any]:
    found = [d for p in sorted(K8S.glob("*.yaml")) for d in docs(p)
             if d.get("kind") == kind and d.get("metadata", {}).get("name") == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} manifests"
    return found[0]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def settings_env() -> dict[str, str]:
    return k8s("ConfigMap", "liftstream-settings")["data"]


# --- every file ---------------------------------------------------------------------------------------------

def test_every_yaml_and_json_file_parses() -> None:
    files = sorted([*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")])
    assert len(files) >= 15
    for path in files:
        assert docs(path), path
    for path in DEPLOY.rglob("*.json"):
        json.loads(path.read_text())


def test_env_vars_are_settings_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings ignores unknown variables (extra="ignore"), so a misspelt name would be silently dropped.
    # Compose values may be `${VAR:-default}`: check the default.
    worker_env = {k: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(v))
                  for k, v in compose()["services"]["worker"]["environment"].items()}
    for env in (settings_env(), worker_env):
        for name, value in env.items():
            monkeypatch.setenv(name, str(value))
        settings = load_settings()
        for name, value in env.items():
            node: Any = settings
            for part in name.removeprefix("LIFTSTREAM_").lower().split("__"):
                assert part in type(node).model_fields, f"{name} is not a Settings field"
                node = getattr(node, part)
            assert str(node) == str(value), name
        for name in env:
            monkeypatch.delenv(name)


# --- Dockerfile ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Instruction:
    command: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions, continuation lines joined and comments dropped (enough for this Dockerfile's syntax)."""
    out: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command, _, args = (pending + line).strip().partition(" ")
        out.append(Instruction(command.upper(), args.strip()))
        pending = ""
    assert not pending, "dangling line continuation"
    return out


def stages(instructions: list[Instruction]) -> dict[str, tuple[str, list[Instruction]]]:
    """stage name → (its FROM image or parent stage, its instructions), in file order."""
    out: dict[str, tuple[str, list[Instruction]]] = {}
    for ins in instructions:
        if ins.command == "FROM":
            base, _, name = ins.args.partition(" AS ")
            out[name.strip()] = (base.strip(), [])
        else:
            out[next(reversed(out))][1].append(ins)
    return out


def last(stage_map: dict[str, tuple[str, list[Instruction]]], stage: str, command: str) -> str | None:
    """The value of `command` in effect in `stage`, following FROM <parent stage>."""
    base, instructions = stage_map[stage]
    found = [i.args for i in instructions if i.command == command]
    if found:
        return found[-1]
    return last(stage_map, base, command) if base in stage_map else None


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent directories decides."""
    def matches(pattern: str) -> bool:
        regex = re.escape(pattern.strip("/")).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        parts = path.split("/")
        return any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1))

    ignored = False
    for pattern in patterns:
        if pattern.startswith("!") and matches(pattern[1:]):
            ignored = False
        elif not pattern.startswith("!") and matches(pattern):
            ignored = True
    return ignored


def dockerfile() -> dict[str, tuple[str, list[Instruction]]]:
    return stages(parse_dockerfile(DOCKERFILE.read_text()))


def copy_from(instruction: Instruction) -> str | None:
    """The stage or image a `COPY --from=` copies out of; None for other instructions."""
    found = re.search(r"--from=(\S+)", instruction.args)
    return found[1] if instruction.command == "COPY" and found else None


def test_dockerfile_images_are_pinned() -> None:
    stage_map = dockerfile()
    bases = [base for base, _ in stage_map.values()]
    bases += [source for _, ins in stage_map.values() for i in ins if (source := copy_from(i))]
    external = [b for b in bases if b not in stage_map]
    assert external and all(pinned(b) for b in external), external
    assert all(b.startswith("python:3.11") for b in external if b.startswith("python:"))


def test_dockerfile_installs_the_worker_from_the_lock() -> None:
    runs = [i.args for _, ins in dockerfile().values() for i in ins
            if i.command == "RUN" and "uv sync" in i.args]
    assert runs
    for run in runs:
        assert {"--frozen", "--no-dev", "--no-default-groups"} <= set(run.split()), run


def test_dockerfile_worker_and_simulator_targets() -> None:
    stage_map = dockerfile()
    assert list(stage_map)[-1] == "worker", "the default (last) target must be the worker"
    assert json.loads(last(stage_map, "worker", "ENTRYPOINT") or "null") == ["liftstream", "worker"]
    assert json.loads(last(stage_map, "simulator", "ENTRYPOINT") or "null") == ["liftstream", "simulate"]
    assert last(stage_map, "worker", "EXPOSE") == str(DEFAULTS.metrics_port)
    healthcheck = last(stage_map, "worker", "HEALTHCHECK") or ""
    assert " CMD " in f" {healthcheck} " and "healthcheck.py" in healthcheck
    for stage in ("worker", "simulator"):
        user = (last(stage_map, stage, "USER") or "root").split(":")[0]
        assert user not in ("root", "0"), stage


def test_dockerfile_copies_only_what_the_context_holds() -> None:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    sources = [src for _, ins in dockerfile().values() for i in ins
               if i.command == "COPY" and copy_from(i) is None for src in i.args.split()[:-1]]
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), src
        assert not dockerignored(src, patterns), f"{src} is excluded by .dockerignore"
    for heavy in (".venv", ".liftstream", "triton_repo", ".git", "tests"):
        assert dockerignored(heavy, patterns), heavy


def test_healthcheck_script_follows_the_live_endpoint() -> None:
    script = DEPLOY / "docker" / "healthcheck.py"
    assert "healthcheck.py\", \"/live\"]" in (last(dockerfile(), "worker", "HEALTHCHECK") or "")
    (port,) = free_ports(1)
    now = [100.0]
    health = Health(stale_s=30, clock=lambda: now[0])
    running = serve(port, CollectorRegistry(), addr="127.0.0.1", routes=health.routes())
    assert running is not None
    env = {"LIFTSTREAM_METRICS_PORT": str(port), "PATH": "/usr/bin:/bin"}

    def check(*path: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, str(script), *path], env=env, capture_output=True, timeout=20,
                              check=False)

    try:
        starting = check("/live")
        health.beat()
        live, not_ready = check("/live"), check("/ready")
        now[0] += 31
        stale = check()
    finally:
        running.shutdown()
        running.server_close()
    assert starting.returncode == 1 and b"unhealthy" in starting.stderr
    assert live.returncode == 0, live.stderr
    assert not_ready.returncode == 1  # no partitions, Triton not checked yet
    assert stale.returncode == 1 and b"503" in stale.stderr
    down = check()
    assert down.returncode == 1 and b"unhealthy" in down.stderr


# --- docker compose -----------------------------------------------------------------------------------------

def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """container path → host path of the service's bind mounts (sources relative to the compose file)."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            out[target] = (COMPOSE_DIR / source).resolve()
    return out


def test_compose_file_follows_the_compose_spec() -> None:
    compose_spec = pytest.importorskip("compose_spec")
    compose_spec.PyCompose.from_yaml((COMPOSE_DIR / "docker-compose.yml").read_text()).to_spec()


def test_compose_has_the_stack_with_pinned_images_and_healthchecks() -> None:
    services = compose()["services"]
    assert set(services) == {"kafka", "triton", "prometheus", "alertmanager", "grafana", "worker",
                             "simulator"}
    for name, service in services.items():
        assert pinned(service["image"]), f"{name}: {service['image']}"
        if name == "simulator":  # a producer that ends when its world is exhausted
            continue
        if "build" in service:
            assert last(dockerfile(), service["build"]["target"], "HEALTHCHECK"), name
        else:
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services
            assert condition["condition"] == "service_healthy", f"{name} → {dependency}"
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    assert services["triton"]["image"] == "nvcr.io/nvidia/tritonserver:24.10-py3"
    for built in ("worker", "simulator"):
        assert services[built]["image"] == f"liftstream-{built}:{VERSION}"
        build = services[built]["build"]
        assert (COMPOSE_DIR / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        assert build["target"] in dockerfile()


def test_compose_kafka_runs_kraft_with_a_valid_cluster_id() -> None:
    env = compose()["services"]["kafka"]["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "ZOOKEEPER_CONNECT" not in str(env)
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16
    assert int(env["KAFKA_NUM_PARTITIONS"]) == DEFAULTS.topics.partitions


def test_compose_triton_gets_a_gpu_and_the_model_repository() -> None:
    triton = compose()["services"]["triton"]
    (device,) = triton["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert "--model-control-mode=poll" in triton["command"]
    repo = next(a.split("=", 1)[1] for a in triton["command"] if a.startswith("--model-repository="))
    assert bind_mounts(triton)[repo] == ROOT / DEFAULTS.model_repo
    assert {p.split(":")[1] for p in triton["ports"]} == {"8000", "8001", "8002"}


def test_compose_worker_is_scalable_and_wired_to_kafka_and_triton() -> None:
    services = compose()["services"]
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker
    env = worker["environment"]
    assert env["LIFTSTREAM_KAFKA__BOOTSTRAP"] == "kafka:9092"
    assert env["LIFTSTREAM_TRITON_URL"] == "triton:8001"
    assert bind_mounts(worker)[env["LIFTSTREAM_MODEL_REPO"]] == ROOT / DEFAULTS.model_repo
    assert set(worker["depends_on"]) == {"kafka", "triton"}
    assert services["simulator"]["environment"]["LIFTSTREAM_KAFKA__BOOTSTRAP"] == "kafka:9092"


def test_compose_bind_mounts_exist() -> None:
    for name, service in compose()["services"].items():
        for source in bind_mounts(service).values():
            assert source.exists() or source == ROOT / DEFAULTS.model_repo, f"{name}: {source}"


def test_compose_prometheus_config_is_valid_with_the_mounted_rules(tmp_path: Path) -> None:
    promtool = tool("promtool")
    prometheus = compose()["services"]["prometheus"]
    mounts = bind_mounts(prometheus)
    config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())
    assert [mounts[r] for r in config["rule_files"]] == [RULES]
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    (worker_sd,) = jobs["liftstream-worker"]["dns_sd_configs"]
    assert worker_sd["names"] == ["worker"] and worker_sd["port"] == DEFAULTS.metrics_port
    assert "triton" in jobs
    (am,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am.split(":")[0] in compose()["services"]
    # The container paths do not exist here: check a copy whose rule files point at the mounted sources.
    config["rule_files"] = [str(mounts[r]) for r in config["rule_files"]]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config))
    run_tool(promtool, "check", "config", str(checked))


def test_compose_alertmanager_config_is_valid() -> None:
    mounts = bind_mounts(compose()["services"]["alertmanager"])
    run_tool(tool("amtool"), "check-config", str(mounts["/etc/alertmanager/alertmanager.yml"]))


def test_compose_grafana_provisions_the_dashboard_and_prometheus() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = bind_mounts(grafana)
    dashboards = {t: s for t, s in mounts.items() if s.suffix == ".json"}
    assert list(dashboards.values()) == [DEPLOY / "grafana" / "liftstream-dashboard.json"]
    providers = [yaml.safe_load(s.read_text()) for t, s in mounts.items() if "provisioning/dashboards" in t]
    (provider,) = providers[0]["providers"]
    assert {str(Path(t).parent) for t in dashboards} == {provider["options"]["path"]}
    sources = [yaml.safe_load(s.read_text()) for t, s in mounts.items() if "provisioning/datasources" in t]
    (source,) = sources[0]["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"]
    assert source["url"] == "http://prometheus:9090"


# --- Kubernetes ---------------------------------------------------------------------------------------------

def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def rendered() -> list[dict[str, Any]]:
    """What `kubectl apply -k deploy/k8s` applies: the resources plus the generated ConfigMaps."""
    spec = kustomization()
    out = [d for name in spec["resources"] for d in docs(K8S / name)]
    for generator in spec["configMapGenerator"]:
        data = {Path(f).name: (K8S / f).read_text() for f in generator["files"]}
        out.append({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": generator["name"], "namespace": spec["namespace"]}, "data": data})
    return out


def test_kustomization_lists_every_manifest() -> None:
    spec = kustomization()
    assert set(spec["resources"]) == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert spec["generatorOptions"]["disableNameSuffixHash"] is True
    for generator in spec["configMapGenerator"]:
        assert all((K8S / f).is_file() for f in generator["files"])


def test_manifests_have_identity_and_namespace() -> None:
    for doc in rendered():
        assert {"apiVersion", "kind", "metadata"} <= set(doc), doc
        assert doc["metadata"]["name"]
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == kustomization()["namespace"], doc["metadata"]["name"]


def test_manifests_match_the_kubernetes_schemas() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    custom = []
    for doc in rendered():
        if "." in doc["apiVersion"].split("/")[0] and not doc["apiVersion"].startswith(("apps/", "batch/")):
            custom.append(doc["kind"])  # a CRD: no schema ships for it (checked by hand below)
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(map(str, exc.path))
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {where}: {exc.message}")
    assert custom == ["ScaledObject"]


def test_kubectl_kustomize_renders_the_same_objects() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")
    done = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    ids = sorted((d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(done.stdout))
    assert ids == sorted((d["kind"], d["metadata"]["name"]) for d in rendered())


def test_triton_deployment_has_a_gpu_probes_and_the_model_repository() -> None:
    triton = k8s("Deployment", "triton")
    main = container(triton)
    assert main["image"] == compose()["services"]["triton"]["image"]
    assert main["resources"]["limits"]["nvidia.com/gpu"] == 1
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"http": 8000, "grpc": 8001, "metrics": 8002}
    assert main["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert "--model-control-mode=poll" in main["args"]
    repo = next(a.split("=", 1)[1] for a in main["args"] if a.startswith("--model-repository="))
    mount = next(m for m in main["volumeMounts"] if m["mountPath"] == repo)
    volume = next(v for v in triton["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    k8s("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    service = k8s("Service", "triton")
    assert {p["port"] for p in service["spec"]["ports"]} == {8000, 8001, 8002}
    assert service["spec"]["selector"] == triton["spec"]["selector"]["matchLabels"]


def test_worker_deployment_is_wired_to_settings_secret_and_probes() -> None:
    worker = k8s("Deployment", "liftstream-worker")
    main = container(worker)
    assert main["image"] == compose()["services"]["worker"]["image"]
    assert [e["configMapRef"]["name"] for e in main["envFrom"]] == ["liftstream-settings"]
    (password,) = main["env"]
    assert password["name"] == "LIFTSTREAM_KAFKA__SASL_PASSWORD" and "secretKeyRef" in password["valueFrom"]
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"metrics": int(settings_env()["LIFTSTREAM_METRICS_PORT"])}
    for probe, path in (("startupProbe", "/live"), ("livenessProbe", "/live"), ("readinessProbe", "/ready")):
        assert main[probe]["httpGet"] == {"path": path, "port": "metrics"}, probe
    assert {"cpu", "memory"} <= set(main["resources"]["requests"]) and main["resources"]["limits"]["memory"]
    pod = worker["spec"]["template"]["spec"]
    uid = (last(dockerfile(), "worker", "USER") or "").split(":")[0]
    assert pod["securityContext"]["runAsNonRoot"] and str(pod["securityContext"]["runAsUser"]) == uid
    assert settings_env()["LIFTSTREAM_MODEL_REPO"] in {m["mountPath"] for m in main["volumeMounts"]}
    service = k8s("Service", "liftstream-worker")
    assert service["spec"]["selector"] == worker["spec"]["selector"]["matchLabels"]
    assert [p["name"] for p in service["spec"]["ports"]] == ["metrics"]


def test_settings_point_at_the_triton_service() -> None:
    host, port = settings_env()["LIFTSTREAM_TRITON_URL"].split(":")
    grpc = next(p for p in k8s("Service", host)["spec"]["ports"] if p["name"] == "grpc")
    assert grpc["port"] == int(port)


def test_keda_scales_the_worker_on_consumer_lag() -> None:
    scaled = k8s("ScaledObject", "liftstream-worker")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "liftstream-worker"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert meta["consumerGroup"] == DEFAULTS.app_id
    assert meta["topic"] == DEFAULTS.topics.exposures
    assert int(meta["lagThreshold"]) > 0
    assert meta["bootstrapServers"] == settings_env()["LIFTSTREAM_KAFKA__BOOTSTRAP"]
    low, high = scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]
    assert 1 <= low <= high <= int(settings_env()["LIFTSTREAM_TOPICS__PARTITIONS"])


def test_k8s_rules_are_the_deploy_prometheus_rules() -> None:
    copy = K8S / "prometheus" / RULES.name
    fix = f"cp {RULES.relative_to(ROOT)} {copy.relative_to(ROOT)}"
    assert copy.read_bytes() == RULES.read_bytes(), f"the copy is stale: {fix}"


def test_k8s_prometheus_config_is_valid() -> None:
    config_path = K8S / "prometheus" / "prometheus.yml"
    config = yaml.safe_load(config_path.read_text())
    assert {j["job_name"] for j in config["scrape_configs"]} == {"liftstream-worker", "triton"}
    assert config["rule_files"] == [RULES.name]
    run_tool(tool("promtool"), "check", "config", str(config_path))
