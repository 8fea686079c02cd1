"""A scripted OpenAI-compatible HTTP server: real wire format, replies decided in advance.

Tests, the example and the benchmark drive the real `openai` client against
it, so the adapter, retries and tool-call parsing are exercised exactly as
against a hosted model, without patching the SDK. It speaks Chat Completions
(plain and streamed) and the Responses API on `127.0.0.1`, in a thread, so it
runs beside any event loop::

    with ScriptedLLMServer([tool_calls(call("word_count", text="a b")), reply("2 words")]) as llm:
        llm.base_url  # "http://127.0.0.1:PORT/v1"

Each request takes the next step of the script: a `reply`, `tool_calls`, a
`fail` (HTTP error, e.g. 429 with a retry delay), or a function of the
`ScriptedRequest` returning one of those (to answer from tool results).
Running out of script is answered with HTTP 500, so a test sees it. A script
can also be JSON (`steps_from_json`, the format of `meshroom agent --script`).

Test doubles live in `meshroom.testing`, apart from `meshroom.agents`, so what
an application imports to run agents holds nothing that only fakes a model.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator
from http.server import ThreadingHTTPServer

from ._steps import Fail, Reply, ScriptedRequest, Step, ToolCalls
from ._wire import ScriptedHandler

__all__ = ["ScriptedLLMServer"]


class ScriptedLLMServer:
    """Serve a script of model replies over HTTP on 127.0.0.1 (a context manager, sync or async).

    Args:
        script: Steps, taken one per request; any iterable (e.g. `itertools.repeat`).
        model: The model name reported back.
        port: 0 picks a free port.
        latency: Seconds each answer takes, as a model's thinking would (default 0).
        chunk_delay: Seconds between the pieces of a streamed answer (default 0), so an
            agent's answer can be seen growing.
    """

    def __init__(
        self,
        script: Iterable[Step] = (),
        *,
        model: str = "scripted",
        port: int = 0,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
    ) -> None:
        self.model = model
        self.latency = latency
        self.chunk_delay = chunk_delay
        self.requests: list[ScriptedRequest] = []
        #: Exceptions raised by function steps (answered with HTTP 400, which is not retried).
        self.errors: list[Exception] = []
        self._script: Iterator[Step] = iter(script)
        self._lock = threading.Lock()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the scripted server is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def extend(self, steps: Iterable[Step]) -> None:
        """Append steps to what is left of the script."""
        with self._lock:
            self._script = itertools.chain(self._script, list(steps))

    def start(self) -> None:
        handler = type("Handler", (ScriptedHandler,), {"scripted": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ScriptedLLMServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> ScriptedLLMServer:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        import anyio

        await anyio.to_thread.run_sync(self.stop)

    def next_step(self, request: ScriptedRequest) -> Reply | ToolCalls | Fail | None:
        """Record `request` and take the step that answers it (None: the script is exhausted).

        The HTTP handler calls it for every request; a function step is called with
        the request until it returns a reply, tool calls or a failure.
        """
        with self._lock:
            self.requests.append(request)
            step = next(self._script, None)
        try:
            while callable(step):
                step = step(request)
        except Exception as error:  # a broken script fails the run, visibly and without retries
            self.errors.append(error)
            return Fail(400, f"scripted step raised {type(error).__name__}: {error}")
        return step
