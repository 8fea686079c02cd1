"""The `meshroom` command line: one Typer app, one module per sub-command.

Each sub-command lives in its own module (`_serve.py`, `_token.py`,
`_agent.py`, `_doc.py`) and registers itself on `app`; this module only
imports them. Every failure is one line on stderr and a non-zero exit status
(see `_errors`; ``MESHROOM_TRACEBACK=1`` adds the traceback of an
unexpected error). Help is plain text: a switch shows no value placeholder,
and the output reads the same in a terminal, a pipe or a log.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

import typer

from ._errors import OneLineGroup

app = typer.Typer(
    name="meshroom",
    help="Rooms where people and AI agents co-edit Yjs documents.",
    cls=OneLineGroup,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

_COMMAND_MODULES = ("_serve", "_token", "_agent", "_doc", "_log", "_mcp", "_version")
#: The distribution that installs both packages, `meshdoc` and `meshroom`.
DISTRIBUTION = "meshdoc"


def package_version() -> str:
    """The installed version (one distribution ships meshdoc and meshroom together)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"meshroom {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Rooms where people and AI agents co-edit Yjs documents."""
    # A callback keeps every command a sub-command (`meshroom token …`), even while
    # only one command module is installed.


def _register_commands() -> None:
    for name in _COMMAND_MODULES:
        try:
            importlib.import_module(f"meshroom.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"meshroom.cli.{name}":
                raise


def main() -> None:
    """Entry point of the `meshroom` console script."""
    _register_commands()
    app(prog_name="meshroom")


if __name__ == "__main__":  # `python -m meshroom.cli`: run the registered module's app
    from meshroom.cli import main as registered_main

    registered_main()
