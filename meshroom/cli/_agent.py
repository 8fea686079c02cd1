"""`meshroom agent`: run one agent in a room from the shell, printing its tool calls as they happen.

```sh
meshroom agent --url ws://127.0.0.1:8765 --room team --document notes/plan \\
    --rules rules.md --model gpt-4.1-mini "Add a risks section"
```

The model is any OpenAI-compatible endpoint (`--base-url`, key from `--api-key`
or `OPENAI_API_KEY`). The agent joins as a participant of kind "agent", works
through the documents and room toolkits, prints each call and its outcome (a
failed call's error in full), then the final answer on stdout. Exit status:
0 answered, 1 stopped by a limit, 2 bad options, 3 the room or the model failed;
a failure is one line on stderr naming what failed (the server URL, or the
model endpoint's URL, HTTP status and message).

To try an agent offline, `--script steps.json` plays a model written in
advance: a scripted OpenAI-compatible server starts in-process and the agent
talks to it through the real `openai` client (no `--model`, `--base-url` or
key needed). The file is a JSON list with one object per model turn::

    [
      {"tool_calls": [{"name": "insert_markdown",
                       "arguments": {"path": "notes/plan", "position": "last_child",
                                     "target_id": null, "markdown": "Risks: none."}}]},
      {"reply": "Added a risks line."}
    ]

A step is ``{"tool_calls": [{"name": …, "arguments": {…}}, …], "text": "…"}``
(``text`` optional), ``{"fail": 429, "message": "…", "retry_after": 0.5}`` (an
HTTP error the agent retries or reports) or ``{"reply": "…"}``, the final
answer: the last step, and only the last, is a reply.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import typer

from . import app
from ._connect import DEV_OPTION, TOKEN_OPTION, connect_deadline, room_token
from ._errors import CliError, error_text


def usage_line(model: str, usage: dict[str, int], seconds: float) -> str:
    """``model M · tokens in N, out N · S s``: what an answer cost (Chat or Responses names)."""
    tokens_in = usage.get("prompt_tokens", usage.get("input_tokens", 0))
    tokens_out = usage.get("completion_tokens", usage.get("output_tokens", 0))
    return f"model {model} · tokens in {tokens_in}, out {tokens_out} · {seconds:.1f} s"


_EXIT_LIMIT = 1
_EXIT_USAGE = 2
_EXIT_FAILED = 3

_SCRIPT_HELP = (
    "Try the agent offline: a JSON file of model steps, played by a scripted "
    "OpenAI-compatible server started in-process (no --model, --base-url or key needed). "
    'Steps: {"tool_calls": [{"name": TOOL, "arguments": {...}}]}, '
    '{"fail": STATUS, "message": TEXT}, and last {"reply": TEXT}.'
)


def _load_schema(path: Path | None) -> Any:
    if path is None:
        return None
    from meshdoc import MeshSchema

    try:
        return MeshSchema.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError) as error:
        raise typer.BadParameter(f"cannot read a schema from {path}: {error}") from error


def load_script(path: Path) -> list[Any]:
    """The steps of a `--script` file, checked: a list of steps ending in its only reply.

    Raises:
        typer.BadParameter: the file cannot be read, is not JSON, or a step is malformed.
    """
    from ..testing import Reply, steps_from_json

    try:
        steps = steps_from_json(json.loads(path.read_text()))
    except OSError as error:
        raise typer.BadParameter(
            f"cannot read {path}: {error.strerror}", param_hint="--script"
        ) from None
    except json.JSONDecodeError as error:
        raise typer.BadParameter(f"{path} is not JSON: {error}", param_hint="--script") from None
    except ValueError as error:
        raise typer.BadParameter(f"{path}: {error}", param_hint="--script") from None
    replies = [index for index, step in enumerate(steps, 1) if isinstance(step, Reply)]
    if replies != [len(steps)]:
        where = f"step {replies[0]} is a reply" if replies else "there is no reply"
        raise typer.BadParameter(
            f"{path}: {where}; the last step, and only the last, must be a reply "
            '({"reply": "…"}): it ends the run',
            param_hint="--script",
        )
    return steps


@app.command()
def agent(
    instruction: str = typer.Argument(..., help="What the agent should do."),
    url: str = typer.Option(..., "--url", "-u", help="Server URL, ws://host:port."),
    room: str = typer.Option(..., "--room", "-r", help="Room to join."),
    document: str | None = typer.Option(
        None, "--document", "-d", help="Document path the instruction is about."
    ),
    rules: Path | None = typer.Option(
        None, "--rules", exists=True, dir_okay=False, help="File with the agent's rules."
    ),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Model name at the endpoint (required unless --script)."
    ),
    base_url: str | None = typer.Option(
        None, "--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1."
    ),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="OPENAI_API_KEY", help="Endpoint key (or OPENAI_API_KEY)."
    ),
    api: str = typer.Option("chat", "--api", help="chat, responses or auto."),
    script: Path | None = typer.Option(
        None, "--script", exists=True, dir_okay=False, help=_SCRIPT_HELP
    ),
    name: str = typer.Option("Agent", "--name", "-n", help="Display name in the room."),
    token: str | None = TOKEN_OPTION,
    dev: bool = DEV_OPTION,
    schema: Path | None = typer.Option(
        None, "--schema", exists=True, dir_okay=False, help="MeshSchema as JSON (to_dict form)."
    ),
    max_steps: int = typer.Option(20, "--max-steps", min=1, help="Model turns at most."),
    time_limit: float | None = typer.Option(None, "--time-limit", min=0.1, help="Seconds."),
    connect_timeout: float = typer.Option(
        10.0, "--connect-timeout", min=0.1, help="Seconds to reach the server, retries included."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the answer."),
) -> None:
    """Run an agent in a room until it answers, printing its tool calls as they happen.

    Exit status: 0 answered, 1 stopped by a limit, 2 bad options, 3 the room or the
    model failed (one line on stderr says what).
    """
    from rich.console import Console
    from rich.markup import escape

    from ..agents import Agent, AgentEvent, AgentResult, LLMError, OpenAILLM
    from ..agents._openai_failures import describe_error
    from ..agents.toolkits import documents_toolkit, room_toolkit
    from ..testing import ScriptedLLMServer

    if api not in ("chat", "responses", "auto"):
        raise typer.BadParameter("must be chat, responses or auto", param_hint="--api")
    if not instruction.strip():
        raise typer.BadParameter("the instruction is empty", param_hint="INSTRUCTION")
    steps = load_script(script) if script is not None else None
    if steps is not None and base_url is not None:
        raise typer.BadParameter(
            "--script runs its own model server: drop --base-url", param_hint="--script"
        )
    if steps is None and model is None:
        raise typer.BadParameter(
            "which model? give --model (or --script FILE to try offline)", param_hint="--model"
        )
    token = room_token(url, room, name, token, dev)
    mesh_schema = _load_schema(schema)
    rules_text = rules.read_text() if rules is not None else ""
    errors = Console(stderr=True, highlight=False, soft_wrap=True)

    def show(event: AgentEvent) -> None:
        if quiet:
            return
        if event.kind == "tool_call":
            errors.print(f"[cyan]→[/] {escape(event.summary)}", markup=True)
        elif event.kind == "tool_result":
            mark = "[red]✗[/]" if event.error else "[green]✓[/]"
            text = event.content if event.error and event.content else event.summary
            errors.print(f"  {mark} {escape(text)}", markup=True)

    def retried(attempt: int, error: Exception, delay: float) -> None:
        if not quiet:
            text = escape(f"model error, retry {attempt} in {delay:.1f}s: {describe_error(error)}")
            errors.print(f"[yellow]{text}[/]", markup=True)

    async def main(llm: OpenAILLM) -> AgentResult:
        runner = Agent(
            name,
            rules=rules_text,
            toolkits=[documents_toolkit(mesh_schema), room_toolkit()],
            llm=llm,
            max_steps=max_steps,
            time_limit=time_limit,
            on_event=show,
            answer_messages=False,
        )
        text = instruction if document is None else f"Document: {document}\n\n{instruction}"
        started = time.perf_counter()
        async with llm:
            with connect_deadline(url, connect_timeout, exit_code=_EXIT_FAILED) as connected:
                async with runner.connect(url, room, token=token, connect_timeout=connect_timeout):
                    if document is not None:
                        await runner.client.open(document, mesh_schema)
                    connected()
                    result = await runner.run(text)
        if not quiet:  # what the answer cost, on stderr beside the tool calls
            errors.print(usage_line(model or "", result.usage, time.perf_counter() - started))
        return result
        raise AssertionError("unreachable: the deadline either raised or the run returned")

    with ExitStack() as stack:
        if steps is not None:
            scripted = stack.enter_context(ScriptedLLMServer(steps, model=model or "scripted"))
            base_url, model, api_key = scripted.base_url, scripted.model, api_key or "scripted"
        assert model is not None
        try:
            llm = OpenAILLM(model, base_url=base_url, api_key=api_key, api=api, on_retry=retried)  # type: ignore[arg-type]
        except LLMError as error:
            raise CliError(str(error), exit_code=_EXIT_USAGE) from None
        try:
            result = anyio.run(main, llm)
        except CliError:
            raise
        except Exception as error:
            raise CliError(error_text(error), exit_code=_EXIT_FAILED) from None
    if result.text:
        print(result.text)
    if not result.completed:
        errors.print(f"stopped: {result.stop_reason} after {result.steps} steps")
        raise typer.Exit(_EXIT_LIMIT)
