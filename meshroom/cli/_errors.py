"""One line per failure: how every `meshroom` command reports what went wrong.

A person at a shell acts on one sentence, not on a usage block, a framed panel
or a traceback, and a script reads the exit status. So the command group runs
each command with Click's standalone mode off and reports every failure itself,
as ``meshroom COMMAND: what failed`` on stderr:

- a usage error (bad option value, missing argument, unknown option): exit 2;
- a `CliError` a command raised (storage refused, server unreachable…): its exit code;
- any other exception (a bug): its type and message, exit 1; with
  ``MESHROOM_TRACEBACK=1`` in the environment the traceback follows.

Exception groups (anyio task groups wrap what fails inside them) are unwrapped
to the errors they hold, so the line names the real failure.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

if sys.version_info < (3, 11):  # pragma: no cover - anyio brings the backport there
    from exceptiongroup import BaseExceptionGroup

try:  # typer >= 0.20 ships its own copy of Click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - older typer runs on Click itself
    from click import get_current_context  # type: ignore[no-redef]
    from click.exceptions import (  # type: ignore[no-redef,assignment]
        ClickException,
        NoArgsIsHelpError,
        UsageError,
    )

__all__ = ["CliError", "OneLineGroup", "error_text", "one_line"]

EXIT_USAGE = 2


class CliError(Exception):
    """A failure the person can act on: printed as one line, then exit with `exit_code`.

    The command that raised it is remembered (from Click's current context), so the
    line says ``meshroom serve: …`` or ``meshroom doc export: …``.
    """

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        context = get_current_context(silent=True)
        self.command_path: str | None = context.command_path if context is not None else None


def one_line(text: str) -> str:
    """`text` with every run of whitespace (newlines included) made one space."""
    return " ".join(text.split())


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def error_text(error: BaseException) -> str:
    """What failed, on one line: the message of each error an exception group holds.

    An error with an empty message is named by its type, so the line is never blank.
    """
    texts: list[str] = []
    for leaf in _leaves(error):
        text = one_line(str(leaf)) or type(leaf).__name__
        if text not in texts:
            texts.append(text)
    return "; ".join(texts)


def _command_path(group: Any, prog_name: str, args: Sequence[str]) -> str:
    """``meshroom doc export``: the program and the sub-command words at the start of `args`."""
    words = [prog_name]
    command: Any = group
    for arg in args:
        commands = getattr(command, "commands", None)
        if not commands or arg not in commands:
            break
        command = commands[arg]
        words.append(arg)
    return " ".join(words)


def _say(where: str, message: str) -> None:
    typer.echo(f"{where}: {message}", err=True)


class OneLineGroup(TyperGroup):
    """The `meshroom` command group: every failure is one line on stderr and an exit status."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        name = prog_name or "meshroom"
        try:
            outcome = super().main(argv, name, complete_var, False, **extra)
        except NoArgsIsHelpError as shown:  # `meshroom doc`: the help
            typer.echo(shown.format_message(), err=True)
            sys.exit(EXIT_USAGE)
        except UsageError as error:
            where = error.ctx.command_path if error.ctx is not None else name
            _say(where, f"{one_line(error.format_message())} (see '{where} --help')")
            sys.exit(error.exit_code)
        except ClickException as error:
            _say(_command_path(self, name, argv), one_line(error.format_message()))
            sys.exit(error.exit_code)
        except typer.Abort:
            _say(_command_path(self, name, argv), "aborted")
            sys.exit(1)
        except CliError as error:
            _say(error.command_path or _command_path(self, name, argv), error_text(error))
            sys.exit(error.exit_code)
        except Exception as error:
            if os.environ.get("MESHROOM_TRACEBACK"):
                traceback.print_exception(error)
            kinds = "/".join(dict.fromkeys(type(leaf).__name__ for leaf in _leaves(error)))
            _say(_command_path(self, name, argv), f"{kinds}: {error_text(error)}")
            sys.exit(1)
        sys.exit(outcome if isinstance(outcome, int) else 0)
