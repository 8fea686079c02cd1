"""`meshroom agent`: run one agent in a room from the shell, printing its tool calls as they happen.

```sh
meshroom agent --url ws://127.0.0.1:8765 --room team --document notes/plan \\
    --rules rules.md --model gpt-4.1-mini "Add a risks section"
```

The model is any OpenAI-compatible endpoint (`--base-url`, key from `--api-key`
or `OPENAI_API_KEY`). The agent joins as a participant of kind "agent", works
through the documents and room toolkits, prints each call and its outcome, then
the final answer on stdout. Exit status: 0 answered, 1 stopped by a limit,
2 bad options, 3 the room or the model failed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import typer

from .cli import app

_EXIT_LIMIT = 1
_EXIT_FAILED = 3


def _load_schema(path: Path | None) -> Any:
    if path is None:
        return None
    from meshdoc import MeshSchema

    try:
        return MeshSchema.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError) as error:
        raise typer.BadParameter(f"cannot read a schema from {path}: {error}") from error


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
    model: str = typer.Option(..., "--model", "-m", help="Model name at the endpoint."),
    base_url: str | None = typer.Option(
        None, "--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1."
    ),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="OPENAI_API_KEY", help="Endpoint key (or OPENAI_API_KEY)."
    ),
    api: str = typer.Option("chat", "--api", help="chat, responses or auto."),
    name: str = typer.Option("Agent", "--name", "-n", help="Display name in the room."),
    token: str | None = typer.Option(None, "--token", help="Access token for the room."),
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
    """Run an agent in a room until it answers, printing its tool calls as they happen."""
    from rich.console import Console
    from rich.markup import escape

    from .agents import Agent, AgentEvent, AgentResult, OpenAILLM
    from .agents.toolkits import documents_toolkit, room_toolkit

    if api not in ("chat", "responses", "auto"):
        raise typer.BadParameter("must be chat, responses or auto", param_hint="--api")
    if not instruction.strip():
        raise typer.BadParameter("the instruction is empty", param_hint="INSTRUCTION")
    mesh_schema = _load_schema(schema)
    rules_text = rules.read_text() if rules is not None else ""
    errors = Console(stderr=True, highlight=False)

    def show(event: AgentEvent) -> None:
        if quiet:
            return
        if event.kind == "tool_call":
            errors.print(f"[cyan]→[/] {escape(event.summary)}", markup=True, soft_wrap=True)
        elif event.kind == "tool_result":
            mark = "[red]✗[/]" if event.error else "[green]✓[/]"
            errors.print(f"  {mark} {escape(event.summary)}", markup=True, soft_wrap=True)

    def retried(attempt: int, error: Exception, delay: float) -> None:
        if not quiet:
            text = escape(f"model error, retry {attempt} in {delay:.1f}s: {error}")
            errors.print(f"[yellow]{text}[/]", markup=True)

    async def main() -> AgentResult:
        llm = OpenAILLM(
            model,
            base_url=base_url,
            api_key=api_key,
            api=api,
            on_retry=retried,  # type: ignore[arg-type]
        )
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
        async with llm, runner.connect(url, room, token=token, connect_timeout=connect_timeout):
            if document is not None:
                await runner.client.open(document, mesh_schema)
            return await runner.run(text)

    try:
        result = anyio.run(main)
    except Exception as error:
        errors.print(f"[red]failed:[/] {escape(str(error))}", markup=True)
        raise typer.Exit(_EXIT_FAILED) from None
    if result.text:
        print(result.text)
    if not result.completed:
        errors.print(f"stopped: {result.stop_reason} after {result.steps} steps")
        raise typer.Exit(_EXIT_LIMIT)
