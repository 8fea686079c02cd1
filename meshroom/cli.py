"""The `meshroom` command line: one Typer app, one module per sub-command.

Each sub-command lives in its own module (`_cli_serve.py`, `_cli_token.py`,
`_cli_agent.py`) and registers itself on `app`; this module only imports them.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="meshroom",
    help="Rooms where people and AI agents co-edit Yjs documents.",
    no_args_is_help=True,
    add_completion=False,
)

_COMMAND_MODULES = ("_cli_serve", "_cli_token", "_cli_agent")


@app.callback()
def _root() -> None:
    """Rooms where people and AI agents co-edit Yjs documents."""
    # A callback keeps every command a sub-command (`meshroom token …`), even while
    # only one command module is installed.


def _register_commands() -> None:
    for name in _COMMAND_MODULES:
        try:
            importlib.import_module(f"meshroom.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"meshroom.{name}":
                raise


def main() -> None:
    """Entry point of the `meshroom` console script."""
    _register_commands()
    app()


if __name__ == "__main__":  # `python -m meshroom.cli`: run the registered module's app
    from meshroom.cli import main as registered_main

    registered_main()
