#!/usr/bin/env bash
# Validates the deployment files in deploy/ without a container engine (none is assumed on a
# developer's or CI machine): linters from PyPI in a private venv, the Compose Specification's
# schema, systemd's own verifier, and `portcullis check-config` on every configuration shipped.
# An image is not built here; see tests/deploy/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
bin="$target/debug/portcullis"
venv="${PORTCULLIS_DEPLOY_VENV:-$target/deploy-venv}"

[ -x "$bin" ] || cargo build --quiet --bin portcullis
. scripts/lib.sh
python_venv "$venv" tests/deploy/requirements.txt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "-- hadolint deploy/Dockerfile"
"$venv/bin/hadolint" --failure-threshold style deploy/Dockerfile
echo "-- kubernetes-validate --strict deploy/kubernetes/portcullis.yaml"
"$venv/bin/kubernetes-validate" --strict --quiet deploy/kubernetes/portcullis.yaml
echo "-- compose schema and topology, manifest, Dockerfile and unit settings"
"$venv/bin/python" tests/deploy/check_deploy.py "$work"
echo "-- portcullis check-config on the shipped configurations"
for config in deploy/portcullis.container.toml deploy/compose/portcullis.toml "$work/kubernetes.toml"; do
  "$bin" check-config "$config"
done
if command -v systemd-analyze >/dev/null; then
  echo "-- systemd-analyze verify deploy/systemd/portcullis.service"
  # The unit names the installed binary; verify it against the one just built. Unknown keys
  # are only warnings to systemd, so any output fails the check.
  sed "s|/usr/local/bin/portcullis|$(realpath "$bin")|g" deploy/systemd/portcullis.service \
    >"$work/portcullis.service"
  if ! systemd-analyze verify "$work/portcullis.service" >"$work/verify.log" 2>&1 \
    || [ -s "$work/verify.log" ]; then
    cat "$work/verify.log" >&2
    exit 1
  fi
else
  echo "-- systemd-analyze not found: the unit is checked by check_deploy.py only"
fi
echo "deployment files OK"
