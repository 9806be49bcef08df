# Verdict: `make test` is what CI runs; `make demo` runs Verdict's main job locally.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

# Reuse a target directory outside the clone so repeated runs (and CI on the same machine) stay fast.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/verdict/target
export CARGO_TERM_COLOR ?= never

.PHONY: deps test-deps test fmt-check clippy unit fmt demo

deps:
	@scripts/install-deps.sh

# Also the upstream tools the interop tests compare against (notation, cosign, oras, helm,
# Sigstore's timestamp-server, a referrers-API registry), built from Go modules into
# ~/.cache/verdict/tools on the first run (a few minutes; later runs build nothing).
test-deps:
	@scripts/install-deps.sh --oracles

## Everything CI checks: formatting, lints, all tests (real docker-registry and nats-server included).
test: test-deps fmt-check clippy unit

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets --locked -- -D warnings
	# The benchmark's store filler is behind a feature; build it too so it cannot rot.
	cargo clippy -p verdict-testkit --bins --features bench-store --locked -- -D warnings

# Tests without ../shared/vectors skip themselves (they pass, so cargo hides why) and record it
# in $(SKIPPED) (verdict_testkit::skip); the list is printed after cargo's, whatever cargo's exit.
SKIPPED := $(CARGO_TARGET_DIR)/verdict-skipped

unit:
	rm -rf "$(SKIPPED)"
	status=0; cargo test --workspace --locked --no-fail-fast || status=$$?; \
	scripts/skipped-tests.sh "$(SKIPPED)"; exit $$status

fmt:
	cargo fmt --all

## A signed and an unsigned image in a local registry, judged by a real `verdict serve` as Gatekeeper would ask.
demo: deps
	cargo build --locked -p verdict -p verdict-testkit --bins
	$(CARGO_TARGET_DIR)/debug/verdict-demo $(CARGO_TARGET_DIR)/debug/verdict
