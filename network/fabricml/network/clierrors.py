"""How the network's commands (`fabricml network|site|chaincode|site deploy`) fail: an error
they know is printed as `error: <message>` on stderr and the command exits 1; anything
else is a bug and keeps its traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar, cast

from rich.console import Console
from rich.text import Text

F = TypeVar("F", bound=Callable[..., Any])


def fail(console: Console, exc: BaseException) -> NoReturn:
    # As plain text, unwrapped: a message holding "[a-z]" or a long path must arrive whole.
    console.print(Text.assemble(("error: ", "red"), str(exc)), soft_wrap=True)
    raise SystemExit(1)


def reports(console: Console, *errors: type[BaseException]) -> Callable[[F], F]:
    """Decorate a command (below `@group.command()`): any of `errors` it raises is failed
    on `console`. Its click options and help pass through unchanged."""

    def decorate(f: F) -> F:
        @functools.wraps(f)
        def command(*args: Any, **kwargs: Any) -> Any:
            try:
                return f(*args, **kwargs)
            except errors as exc:
                fail(console, exc)

        return cast(F, command)

    return decorate
