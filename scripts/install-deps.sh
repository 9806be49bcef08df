#!/usr/bin/env bash
# Installs what Verdict's tests and demo need on a Debian machine, only if missing.
# Usage: scripts/install-deps.sh [--oracles]   (as root, or with sudo available)
#   --oracles also builds the upstream tools the interop tests compare against (make test does;
#   make demo does not need them).
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

# Upstream tools the interop tests use as oracles, built from their Go modules at pinned versions
# into $TOOLS/<name>-<version>/ and linked from $TOOLS/bin (a second run finds them and builds
# nothing). Never runtime dependencies of Verdict. Pins: the newest the Go module proxy serves.
TOOLS=${VERDICT_TOOLS_DIR:-$HOME/.cache/verdict/tools}
NOTATION_VERSION=v1.3.2   # github.com/notaryproject/notation (v1.3.2 is the one version the proxy serves)
ORAS_VERSION=v1.3.6       # oras.land/oras
COSIGN_VERSION=v3.1.3     # github.com/sigstore/cosign/v3
TSA_VERSION=v2.1.3        # github.com/sigstore/timestamp-authority/v2 (newer ones need Go 1.27)
HELM_VERSION=v4.3.2       # helm.sh/helm/v4 (for the chart tests of the Kubernetes work)
here=$(cd "$(dirname "$0")/.." && pwd)

go_tools() {
  if ! command -v go >/dev/null 2>&1; then
    echo "error: go not found; the interop tests build notation, cosign, oras, helm, Sigstore's timestamp authority and a referrers-API registry from Go modules. Install Go >= 1.26 (https://go.dev/dl/) and run scripts/install-deps.sh again." >&2
    exit 1
  fi
  mkdir -p "$TOOLS/bin"
  # name version module/package
  # name version module package. Built inside a throwaway module that requires the pinned
  # version: `go install pkg@version` also asks the proxy for the module's version list, which
  # the proxy here refuses for notation.
  build() {
    local name=$1 version=$2 module=$3 pkg=$4 dir="$TOOLS/$1-$2"
    if [ ! -x "$dir/$name" ]; then
      echo "building $name $version from $module (first run only)"
      local tmp
      tmp=$(mktemp -d)
      (
        cd "$tmp"
        go mod init verdict.invalid/build-"$name" >/dev/null 2>&1
        go mod edit -require="$module@$version"
        CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$dir/$name" "$pkg"
      )
      rm -rf "$tmp"
    fi
    ln -sfn "$dir/$name" "$TOOLS/bin/$name"
  }
  build notation "$NOTATION_VERSION" github.com/notaryproject/notation github.com/notaryproject/notation/cmd/notation
  build oras "$ORAS_VERSION" oras.land/oras oras.land/oras/cmd/oras
  build cosign "$COSIGN_VERSION" github.com/sigstore/cosign/v3 github.com/sigstore/cosign/v3/cmd/cosign
  build helm "$HELM_VERSION" helm.sh/helm/v4 helm.sh/helm/v4/cmd/helm
  build timestamp-server "$TSA_VERSION" github.com/sigstore/timestamp-authority/v2 github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server
  # Our own 40-line main around go-containerregistry's registry (referrers API on); rebuilt when
  # its source or pins change.
  local src="$here/testkit/tools/referrers-registry"
  local key
  key=$(cat "$src/main.go" "$src/go.mod" "$src/go.sum" | sha256sum | cut -c1-12)
  local dir="$TOOLS/referrers-registry-$key"
  if [ ! -x "$dir/referrers-registry" ]; then
    echo "building referrers-registry (go-containerregistry) (first run only)"
    (cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$dir/referrers-registry" .)
  fi
  ln -sfn "$dir/referrers-registry" "$TOOLS/bin/referrers-registry"
}
if [ "${1:-}" = --oracles ]; then
  go_tools
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
