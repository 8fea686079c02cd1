"""`meshroom token`: mint a signed token for one participant; `token revoke` revokes.

Minting prints the token alone on stdout, so it composes:
``TOKEN=$(meshroom token --room team --path 'notes/*' --read-only --name Ann)``.
``meshroom token revoke --jti ID`` / ``--participant P`` adds to the revocation
file that ``meshroom serve --revocations FILE`` polls.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import typer

from . import app
from ._errors import CliError

token_app = typer.Typer(
    name="token",
    help="Mint a token granting rooms and document paths (or revoke tokens: `token revoke`).",
    invoke_without_command=True,
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(token_app, name="token")

_REVOCATIONS_HELP = (
    "Revocation file (JSON) that `meshroom serve --revocations` polls; created if missing."
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``"90"``, ``"30m"``, ``"12h"``, ``"7d"`` → seconds; anything else is a clear error."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise typer.BadParameter(f"{text!r} is not a positive duration like 3600, 30m, 12h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _attributes(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--attr")
        out[key] = value
    return out


@token_app.callback()
def token(
    context: typer.Context,
    room: list[str] | None = typer.Option(
        None, "--room", "-r", help="Room name or pattern the token opens (repeatable; required)."
    ),
    path: list[str] = typer.Option(
        ["*"],
        "--path",
        "-p",
        help="Document path pattern in those rooms (repeatable; `*` matches anything, "
        "`/` included). The room document is always included.",
    ),
    read_only: bool = typer.Option(
        False, "--read-only", help="Grant read-only access (the server drops writes)."
    ),
    admin: bool = typer.Option(
        False,
        "--admin",
        help="Also make the holder an admin of those rooms: it may read their activity "
        "log (GET /rooms/ROOM/activity).",
    ),
    messages: bool = typer.Option(
        True,
        "--messages/--no-messages",
        help="Whether the holder may post room messages (a --read-only token may, by default).",
    ),
    offer_tools: bool = typer.Option(
        True, "--offer-tools/--no-offer-tools", help="Whether the holder may offer toolkits."
    ),
    call_tools: bool = typer.Option(
        True, "--call-tools/--no-call-tools", help="Whether the holder may call offered tools."
    ),
    name: str = typer.Option("", "--name", "-n", help="Display name shown in presence."),
    participant_id: str | None = typer.Option(
        None, "--id", help="Participant id (the `sub` claim); random when omitted."
    ),
    kind: str = typer.Option("person", "--kind", help="person or agent."),
    expires: str = typer.Option("12h", "--expires", "-e", help="Lifetime: 3600, 30m, 12h, 7d."),
    attr: list[str] = typer.Option(
        [], "--attr", help="Extra participant attribute KEY=VALUE (repeatable)."
    ),
    secret: str | None = typer.Option(
        None,
        "--secret",
        envvar="MESHROOM_SECRET",
        help="HMAC secret (at least 32 bytes) shared with `meshroom serve`.",
        show_default=False,
    ),
    private_key: Path | None = typer.Option(
        None, "--private-key", help="PEM private key file (RS256/ES256) instead of a secret."
    ),
    algorithm: str | None = typer.Option(
        None, "--algorithm", help="HS256 (default with a secret), RS256 or ES256."
    ),
    key_id: str | None = typer.Option(
        None, "--key-id", help="`kid` header, to pick one of several server keys."
    ),
    token_id: str | None = typer.Option(
        None,
        "--jti",
        help="Token id (the `jti` claim) that `meshroom token revoke --jti` names; "
        "random when omitted.",
    ),
) -> None:
    """Mint a token granting rooms and document paths, read-write or read-only."""
    if context.invoked_subcommand is not None:
        return
    from ..auth import Grant, mint_token

    if not room:
        raise typer.BadParameter("give at least one --room", param_hint="--room")

    if kind not in ("person", "agent"):
        raise typer.BadParameter(f"{kind!r} is not person or agent", param_hint="--kind")
    if (secret is None) == (private_key is None):
        raise typer.BadParameter(
            "give --secret (or MESHROOM_SECRET) or --private-key, not both or neither"
        )
    key_text = None
    if private_key is not None:
        try:
            key_text = private_key.read_bytes()
        except OSError as error:
            raise typer.BadParameter(str(error), param_hint="--private-key") from None
    try:
        grants = [
            Grant(
                name_,
                paths=tuple(path),
                read_only=read_only,
                admin=admin,
                messages=messages,
                offer_tools=offer_tools,
                call_tools=call_tools,
            )
            for name_ in room
        ]
        text = mint_token(
            grants=grants,
            secret=secret,
            private_key=key_text,
            algorithm=algorithm,
            participant_id=participant_id,
            name=name,
            kind=kind,  # type: ignore[arg-type]
            expires_in=parse_duration(expires),
            attributes=_attributes(attr),
            key_id=key_id,
            token_id=token_id,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    typer.echo(text)


@token_app.command("revoke")
def revoke(
    jti: list[str] = typer.Option(
        [], "--jti", help="Revoke the token with this id (its `jti` claim; repeatable)."
    ),
    participant: list[str] = typer.Option(
        [],
        "--participant",
        help="Revoke every token of this participant (its `sub`) issued until now; "
        "tokens issued later work (repeatable).",
    ),
    revocations: Path = typer.Option(
        ..., "--revocations", "-f", envvar="MESHROOM_REVOCATIONS", help=_REVOCATIONS_HELP
    ),
) -> None:
    """Revoke tokens: servers polling the file refuse them and close their connections."""
    from ..auth import RevocationListError, revoke_in_file

    if not jti and not participant:
        raise typer.BadParameter("give --jti or --participant (or both)")
    if any(not value for value in [*jti, *participant]):
        raise typer.BadParameter("token ids and participant ids must not be empty")
    now = datetime.now(timezone.utc)
    try:
        revoke_in_file(revocations, tokens=jti, participants=participant, now=now.timestamp())
    except RevocationListError as error:
        raise CliError(f"{error} (left as it was)") from None
    except OSError as error:
        raise CliError(f"cannot write {revocations}: {error.strerror or error}") from None
    what = [f"token {value}" for value in jti] + [
        f"participant {value} (tokens issued up to {now:%Y-%m-%dT%H:%M:%SZ})"
        for value in participant
    ]
    typer.echo(f"revoked {', '.join(what)} in {revocations}", err=True)
