#!/usr/bin/env bash
# Installs what Verdict's tests and demo need on a Debian machine, only if missing.
# Usage: scripts/install-deps.sh            (as root, or with sudo available)
set -euo pipefail

# binary -> Debian package
declare -A NEED=(
  [docker-registry]=docker-registry   # OCI registry (distribution 2.8.2) used by tests and the demo
  [nats-server]=nats-server           # NATS with JetStream
  [python3]=python3                   # ../shared/tools/push-oci-layout
  [curl]=curl                         # demo
)
missing=()
for bin in "${!NEED[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("${NEED[$bin]}")
done

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Verdict needs a Rust toolchain >= 1.89 (rustup: https://rustup.rs)." >&2
  exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "installing missing packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: missing ${missing[*]}; run as root: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
