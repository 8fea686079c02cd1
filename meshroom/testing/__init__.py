"""meshroom.testing: test doubles for agents, a model whose replies are written in advance.

`ScriptedLLMServer` is an OpenAI-compatible HTTP server (Chat Completions, streamed
or not, and the Responses API) on 127.0.0.1. Tests, examples and benchmarks point
the real `openai` client at it, so requests, retries and tool-call parsing run as
they do against a hosted model, offline and without patching anything::

    from meshroom.testing import ScriptedLLMServer, call, reply, tool_calls

    script = [tool_calls(call("read_document", path="notes/plan")), reply("Read it.")]
    async with ScriptedLLMServer(script) as model:
        llm = OpenAILLM("scripted", base_url=model.base_url)

A script is a list of steps, one per request: `reply` (the final answer),
`tool_calls` of `call`s, `fail` (an HTTP error, e.g. 429 with `retry_after`), or a
function of the `ScriptedRequest` returning one of those. `steps_from_json` reads
the JSON form `meshroom agent --script FILE` takes.

This package is apart from `meshroom.agents` so that what an application imports
to run agents holds nothing that only fakes a model; it needs neither `openai`
nor any other extra.
"""

from __future__ import annotations

from ._server import ScriptedLLMServer as ScriptedLLMServer
from ._steps import Call as Call
from ._steps import Fail as Fail
from ._steps import Reply as Reply
from ._steps import ScriptedRequest as ScriptedRequest
from ._steps import Step as Step
from ._steps import ToolCalls as ToolCalls
from ._steps import call as call
from ._steps import fail as fail
from ._steps import reply as reply
from ._steps import steps_from_json as steps_from_json
from ._steps import tool_calls as tool_calls

__all__ = [
    "Call",
    "Fail",
    "Reply",
    "ScriptedLLMServer",
    "ScriptedRequest",
    "Step",
    "ToolCalls",
    "call",
    "fail",
    "reply",
    "steps_from_json",
    "tool_calls",
]
