"""Yjs v1 update bytes read without decoding them: the lib0 codec, checks, and held gaps.

What a server needs before it hands untrusted bytes to yrs: `check_update` and
`check_state_vector` refuse counts the bytes cannot hold; `Unsettled` holds back the structs
that follow a gap in their client's clocks. Imports nothing else of meshdoc.
"""

from __future__ import annotations

from ._gaps import MAX_UNSETTLED, Unsettled, unsettled_of
from ._lib0 import (
    VarIntTooLong,
    append_var_int,
    append_var_uint,
    read_var_int,
    read_var_uint,
    read_var_uints,
    write_var_uint,
)
from ._scan import MAX_ANY_DEPTH, check_state_vector, check_update, decode_state

__all__ = [
    "MAX_ANY_DEPTH",
    "MAX_UNSETTLED",
    "Unsettled",
    "VarIntTooLong",
    "append_var_int",
    "append_var_uint",
    "check_state_vector",
    "check_update",
    "decode_state",
    "read_var_int",
    "read_var_uint",
    "read_var_uints",
    "unsettled_of",
    "write_var_uint",
]
