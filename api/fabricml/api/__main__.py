"""`python -m fabricml.api --org org1 --state-dir DIR`: how `fabricml network up` starts an org's API."""

from __future__ import annotations

import argparse
from pathlib import Path

from .server import serve
from .settings import ApiSettings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m fabricml.api", description=__doc__)
    parser.add_argument("--org", required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    overrides = {"org": args.org, "state_dir": args.state_dir}
    if args.port:
        overrides["port"] = args.port
    serve(ApiSettings(**overrides))


if __name__ == "__main__":
    main()
