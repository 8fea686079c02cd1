"""The `meshroom` command group turns any failure into one line and an exit status.

Commands here are a throwaway app built on the same `OneLineGroup` as `meshroom`,
so the paths no shipped command should reach (a bug's exception, an exception
group from a task group) are exercised for real.
"""

from __future__ import annotations

import sys

import typer
from typer.testing import CliRunner

from meshroom.cli._errors import CliError, OneLineGroup, error_text

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

demo = typer.Typer(cls=OneLineGroup, rich_markup_mode=None, add_completion=False)


@demo.callback()
def _root() -> None:
    """A demo group."""


@demo.command()
def crash() -> None:
    """Fail as a bug inside a task group would."""
    raise ExceptionGroup(
        "unhandled errors in a TaskGroup",
        [RuntimeError("disk on fire"), ExceptionGroup("inner", [KeyError("k")])],
    )


@demo.command()
def refuse() -> None:
    """Fail as a command that knows why."""
    raise CliError("storage s3://b: cannot write there", exit_code=3)


def test_an_exception_group_from_a_bug_is_one_line_naming_every_error(monkeypatch):
    monkeypatch.delenv("MESHROOM_TRACEBACK", raising=False)
    result = CliRunner().invoke(demo, ["crash"], prog_name="meshroom")
    assert result.exit_code == 1
    assert result.output == "meshroom crash: RuntimeError/KeyError: disk on fire; 'k'\n"


def test_the_traceback_is_opt_in():
    result = CliRunner().invoke(
        demo, ["crash"], prog_name="meshroom", env={"MESHROOM_TRACEBACK": "1"}
    )
    assert result.exit_code == 1
    assert "Traceback" in result.output and "disk on fire" in result.output
    assert result.output.rstrip().splitlines()[-1].startswith("meshroom crash: RuntimeError")


def test_a_cli_error_keeps_its_exit_code_and_names_its_command():
    result = CliRunner().invoke(demo, ["refuse"], prog_name="meshroom")
    assert (result.exit_code, result.output) == (
        3,
        "meshroom refuse: storage s3://b: cannot write there\n",
    )


def test_error_text_flattens_groups_and_whitespace():
    nested = ExceptionGroup("outer", [ValueError("a\n  b"), ExceptionGroup("x", [OSError()])])
    assert error_text(nested) == "a b; OSError"
