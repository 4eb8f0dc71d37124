#!/usr/bin/env bash
# The README's second command: every check and test, as CI runs them.
# Integration tests start their own networks on their own ports and stop them.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== lint"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy -p fabricml.network -p fabricml.gateway -p fabricml.registry -p fabricml.attest -p fabricml.models -p fabricml.federation -p fabricml.cli -p fabricml.api -p tests
.venv/bin/shellcheck scripts/*.sh .ci/run
test -z "$(gofmt -l chaincode network/ccbuilder)" || { gofmt -l chaincode network/ccbuilder; exit 1; }

echo "== go"
(cd chaincode && go vet ./... && go test ./...)
(cd network/ccbuilder && go vet ./... && go test ./...)

echo "== python"
.venv/bin/python -m pytest "$@"
