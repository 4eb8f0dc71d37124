#!/usr/bin/env bash
# The README's second command: every check and test, as CI runs them.
# Integration tests start their own networks on their own ports and stop them.
#   scripts/test.sh             everything (.ci/run calls this)
#   scripts/test.sh --fast      lint, Go tests and every test that needs no Fabric network
# Other arguments go to pytest, e.g. scripts/test.sh tests/unit -x
set -euo pipefail
cd "$(dirname "$0")/.."

fast=0
if [ "${1:-}" = "--fast" ]; then
  fast=1
  shift
fi

scripts/setup.sh

echo "== lint"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy -p fabricml.network -p fabricml.gateway -p fabricml.contracts -p fabricml.registry \
  -p fabricml.attest -p fabricml.models -p fabricml.federation -p fabricml.flower -p fabricml.cli -p fabricml.demo -p fabricml.api -p tests
.venv/bin/shellcheck scripts/*.sh .ci/run
.venv/bin/lint-imports --no-cache
test -z "$(gofmt -l chaincode network/ccbuilder)" || { gofmt -l chaincode network/ccbuilder; exit 1; }

echo "== go"
(cd chaincode && go vet ./... && go vet -tags conformance ./... && go test ./... && go test -tags conformance ./cmd/...)
(cd network/ccbuilder && go vet ./... && go test ./...)

echo "== python"
if [ "$fast" = 1 ]; then
  .venv/bin/python -m pytest -m "not network" "$@"
else
  # The slowest tests printed at the end: the suite's time budget (35 min in CI) is watched from them.
  .venv/bin/python -m pytest --durations=40 "$@"
fi
