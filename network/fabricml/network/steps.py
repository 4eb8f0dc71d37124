"""A bring-up step printed as it runs: a check mark and its duration when done, a cross if not.

No spinner: sites run their steps in parallel threads and a live display is not shareable."""

from __future__ import annotations

import time

from rich.console import Console


class Step:
    def __init__(self, console: Console, title: str) -> None:
        self.console = console
        self.title = title
        self.started = 0.0

    def __enter__(self) -> Step:
        self.started = time.monotonic()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        mark = "[green]✓[/]" if exc_type is None else "[red]✗[/]"
        self.console.print(f"{mark} {self.title} ({time.monotonic() - self.started:.1f}s)", highlight=False)


def command(console: Console, *argv: str) -> None:
    """Show the command a step runs, as an operator would type it on that site."""
    console.print(f"[bold]$ fabricml {' '.join(argv)}[/]", highlight=False, soft_wrap=True)
