"""Checks the deployment files beyond their schemas: what the README promises of them.

Usage: check_deploy.py OUT_DIR. Writes the Kubernetes ConfigMap's TOML to OUT_DIR so the
caller can run `portcullis check-config` on it.
"""

import json
import pathlib
import sys

import jsonschema
import yaml

root = pathlib.Path(__file__).resolve().parents[2]
out = pathlib.Path(sys.argv[1])
problems = []


def expect(condition, message):
    if not condition:
        problems.append(message)


# Compose: valid against the Compose Specification, three gateway replicas sharing
# PostgreSQL and Redis, each waiting for them to be healthy.
compose = yaml.safe_load((root / "deploy/compose/compose.yaml").read_text())
schema = json.loads((root / "tests/deploy/compose-spec.json").read_text())
for error in jsonschema.Draft7Validator(schema).iter_errors(compose):
    problems.append(f"compose.yaml: {error.message} at {list(error.absolute_path)}")
services = compose.get("services", {})
gateways = [n for n in services if n.startswith("gateway-")]
expect(len(gateways) == 3, f"compose: expected 3 gateway replicas, found {gateways}")
for name in gateways:
    service = services[name]
    waits = service.get("depends_on", {})
    for needed in ("postgres", "redis"):
        expect(
            waits.get(needed, {}).get("condition") == "service_healthy",
            f"compose: {name} does not wait for a healthy {needed}",
        )
    expect(
        service.get("environment", {}).get("PORTCULLIS_STORE__URL", "").startswith("postgres://"),
        f"compose: {name} does not use the shared PostgreSQL store",
    )
for needed in ("postgres", "redis"):
    expect("healthcheck" in services.get(needed, {}), f"compose: {needed} has no health check")
gateway_config = (root / "deploy/compose/portcullis.toml").read_text()
expect('backend = "redis"' in gateway_config, "compose: limits are not kept in Redis")

# Kubernetes: probes on /readyz and /healthz, a non-root read-only container, and the
# configuration the pods mount.
documents = [d for d in yaml.safe_load_all((root / "deploy/kubernetes/portcullis.yaml").read_text()) if d]
kinds = {d["kind"]: d for d in documents}
for kind in ("ConfigMap", "Deployment", "Service", "PodDisruptionBudget"):
    expect(kind in kinds, f"kubernetes: no {kind}")
deployment = kinds.get("Deployment", {})
pod = deployment.get("spec", {}).get("template", {}).get("spec", {})
container = (pod.get("containers") or [{}])[0]
expect(deployment.get("spec", {}).get("replicas", 1) >= 2, "kubernetes: fewer than 2 replicas")
expect(container.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz",
       "kubernetes: readiness probe is not /readyz")
expect(container.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz",
       "kubernetes: liveness probe is not /healthz")
security = container.get("securityContext", {})
pod_security = pod.get("securityContext", {})
expect(security.get("runAsNonRoot") or pod_security.get("runAsNonRoot"), "kubernetes: may run as root")
expect(security.get("readOnlyRootFilesystem") is True, "kubernetes: root filesystem is writable")
expect(security.get("allowPrivilegeEscalation") is False, "kubernetes: privilege escalation allowed")
config_map = kinds.get("ConfigMap", {}).get("data", {})
expect("portcullis.toml" in config_map, "kubernetes: the ConfigMap has no portcullis.toml")
(out / "kubernetes.toml").write_text(config_map.get("portcullis.toml", ""))

# Dockerfile: non-root, a health check through the binary, the release build.
dockerfile = (root / "deploy/Dockerfile").read_text()
expect("USER 65532" in dockerfile, "Dockerfile: does not switch to a non-root user")
expect("HEALTHCHECK" in dockerfile and "health" in dockerfile, "Dockerfile: no health check")
expect("--release --locked" in dockerfile, "Dockerfile: not a locked release build")

# systemd: sandboxed, reload by SIGHUP.
unit = (root / "deploy/systemd/portcullis.service").read_text()
for setting in ("DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict",
                "ExecReload=/bin/kill -HUP $MAINPID"):
    expect(setting in unit, f"systemd: missing {setting}")

if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"deployment files: compose ({len(services)} services), kubernetes ({len(documents)} objects), Dockerfile and unit checked")
