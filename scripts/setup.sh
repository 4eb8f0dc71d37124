#!/usr/bin/env bash
# Install what fabricml needs into the repo: a Python venv with the package and its
# dev tools, and the pinned Fabric binaries (built once into ~/.cache/fabricml).
set -euo pipefail
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1  # the browser tests use Debian's chromium, never a download
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null; then
  echo "setup: $python not found; install Python 3.11 or newer" >&2
  exit 1
fi
if ! command -v go >/dev/null; then
  echo "setup: the go command is not on PATH; install Go 1.24 or newer to build Fabric" >&2
  exit 1
fi

# Reinstall only when the dependency list changed.
stamp=.venv/.fabricml-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$python" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing fabricml and its dependencies into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[dev,flower]"
  echo "$want" > "$stamp"
fi

# The official Node Gateway client: the interop tests' and benchmarks' reference.
node_dir=tests/interop/node
if ! command -v npm >/dev/null; then
  echo "setup: npm not found; install Node.js 20 or newer" >&2
  exit 1
fi
node_stamp=$node_dir/node_modules/.fabricml-installed
node_want=$(sha256sum "$node_dir/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$node_stamp" 2>/dev/null)" != "$node_want" ]; then
  echo "setup: installing the Node reference client (npm ci)"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$node_want" > "$node_stamp"
fi

# Debian's Chromium for the dashboard's browser tests (Playwright drives it; it never downloads one).
if [ ! -x /usr/lib/chromium/chromium ] && ! command -v chromium >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian's chromium (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: chromium not found; install Debian's chromium package for the browser tests" >&2
  fi
fi

# Debian's SoftHSM2: the PKCS#11 token the HSM signer's tests keep their keys in.
if ! command -v softhsm2-util >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >/dev/null
fi

.venv/bin/fabricml network build

# Helm, built from the Go module proxy, for the offline checks of the per-site chart (docs/deploy.md).
.venv/bin/fabricml site deploy build-helm >/dev/null
