"""The `fabricml` command: one entry point for every org operator task."""

from __future__ import annotations


def main() -> None:
    """Run the root command (imported here, so `import fabricml.cli.app` stays light)."""
    from .root import main as root

    root()
