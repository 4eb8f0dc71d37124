"""The command line the benchmarks share: the module's docstring as its help, and the
options several benches take, spelled and explained the same in each."""

from __future__ import annotations

import argparse


def parser(doc: str | None) -> argparse.ArgumentParser:
    """A bench's parser; `doc` (its module docstring) is printed as written by --help."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_concurrency(parser: argparse.ArgumentParser, default: int) -> None:
    parser.add_argument("--concurrency", type=int, default=default, help="calls in flight at once")


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
