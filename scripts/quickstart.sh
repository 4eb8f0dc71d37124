#!/usr/bin/env bash
# The README's first command: set everything up, found the three-organization
# consortium as three sites (each its own directory, CA and keys, on 127.0.1.1,
# 127.0.2.1 and 127.0.3.1, through the `fabricml site`/`consortium`/`chaincode`
# commands, printed as they run), and show it doing real work: a transaction, then
# federated training.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
.venv/bin/fabricml network up
.venv/bin/fabricml network status
.venv/bin/fabricml network demo
# A federated task across the orgs to FINALIZED; the global model registered, approved
# and served by each org's inference service with attested receipts.
.venv/bin/fabricml fed demo
echo
echo "Each organization's admin API and dashboard is running (mutual TLS with the org's own certificates):"
.venv/bin/fabricml api urls
