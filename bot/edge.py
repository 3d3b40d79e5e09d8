"""What arrives at the bot's edge, made safe before anything else sees it: text every channel passes
through `clean_text`, webhook bodies read under a size cap and parsed without raising.

Rules (docs/CONTRACTS.md, "Hostile input"): a body over `BOT_WEBHOOK_MAX_BYTES` is refused (413) before
it is read whole; a body that is not JSON (or nests too deep for the parser) is a 400.
"""

from __future__ import annotations

import json
import re

from starlette.requests import Request

# Lone surrogates cannot be encoded (UTF-8, the database drivers) and NUL cannot be stored in a
# PostgreSQL text column; both become U+FFFD, the replacement character.
_INVALID = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def clean_text(text: str) -> str:
    """`text` with every code point that cannot be stored or encoded replaced by U+FFFD."""
    return _INVALID.sub(REPLACEMENT, text)


class BodyTooLarge(Exception):
    """The request body is over the limit; answer 413."""


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing one over `limit` bytes from its Content-Length or, for a chunked body,
    as soon as the chunks read so far pass it (never the whole of a large body in memory)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class NotJson(ValueError):
    """The body is not a JSON document this parser can read; answer 400."""


def parse_json(raw: bytes) -> object:
    """The JSON value of `raw` (bytes that are not UTF-8 become U+FFFD); raises `NotJson`, never
    RecursionError, for anything else."""
    try:
        return json.loads(raw.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError) as exc:
        raise NotJson(type(exc).__name__) from None
