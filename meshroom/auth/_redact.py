"""Keep tokens out of logs.

A y-websocket client passes its token in the URL (``?token=…``), and ASGI
servers log the URL of every accepted WebSocket (uvicorn: ``"WebSocket
/team/notes.md?token=eyJ…" [accepted]`` at INFO). A token in a log file is a
credential anyone with log access can replay until it expires, so `JwtAuth`
installs `RedactTokens` on those loggers when the server starts.
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactTokens", "install_redaction", "redact"]

_TOKEN_PARAM = re.compile(r"([?&](?:access_)?token=)[^&\s\"']+", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
#: Loggers that print request URLs (uvicorn logs WebSocket handshakes on "uvicorn.error").
URL_LOGGERS = ("uvicorn.error", "uvicorn.access", "hypercorn.access", "hypercorn.error")


def redact(text: str) -> str:
    """Replace token query values and bearer tokens in `text` with ``[redacted]``.

    ```py
    assert redact("/team?token=eyJabc&x=1") == "/team?token=[redacted]&x=1"
    ```
    """
    return _BEARER.sub(r"\1[redacted]", _TOKEN_PARAM.sub(r"\1[redacted]", text))


class RedactTokens(logging.Filter):
    """A logging filter that redacts tokens in a record's message and string arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                key: redact(value) if isinstance(value, str) else value
                for key, value in record.args.items()
            }
        return True


def install_redaction(names: tuple[str, ...] = URL_LOGGERS) -> None:
    """Add one `RedactTokens` filter to each named logger (idempotent)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactTokens) for existing in logger.filters):
            logger.addFilter(RedactTokens())
