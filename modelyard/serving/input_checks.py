"""Text the tokenizer cannot take, refused before it reaches a batch.

JSON can spell code points that are not text: a lone UTF-16 surrogate (`"\\ud800"`), which no
UTF-8 encoder (the tokenizer's, the database driver's) accepts; NUL, which PostgreSQL refuses in
a text column; and the noncharacters (U+FFFE, U+FDD0…), which Unicode reserves for a program's
own use. Any of them in a request is a 422 naming the field, the text's index and the position.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator

_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17)
)
_UNUSABLE = re.compile(f"[\x00\ud800-\udfff{_NONCHARACTERS}]")


# Besides 422s: FastAPI answers 400 to a body it cannot even decode (bytes that are not UTF-8).
UNREADABLE: dict[int | str, dict[str, Any]] = {
    400: {"description": "a body that cannot be decoded (bytes that are not UTF-8)"}
}


def unusable(text: str) -> str | None:
    """Why `text` cannot be tokenized: its first code point that is not text, by position; None
    when every one is text."""
    found = _UNUSABLE.search(text)
    if found is None:
        return None
    point = ord(found.group())
    if point == 0:
        kind = "NUL"
    elif 0xD800 <= point <= 0xDFFF:
        kind = "a lone UTF-16 surrogate (half of a pair: not a character)"
    else:
        kind = "a noncharacter"
    return f"character {found.start()} is U+{point:04X}, {kind}, which no tokenizer takes"


def _checked(text: str) -> str:
    problem = unusable(text)
    if problem is not None:
        raise ValueError(problem)
    return text


# A str field (or list item) whose every code point is text: pydantic names the field and the
# index in the 422's `loc` (["body", "texts", 2]).
Text = Annotated[str, AfterValidator(_checked)]


def first_unusable(field: str, texts: list[str]) -> str | None:
    """`field[i]: why` for the first text of `texts` that cannot be tokenized, or None."""
    for index, text in enumerate(texts):
        problem = unusable(text)
        if problem is not None:
            return f"`{field}`[{index}]: {problem}"
    return None


async def validation_refused(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 with its usual body, written as ASCII JSON: the input it echoes may hold
    the very code point that was refused, which UTF-8 cannot encode (a 500 otherwise)."""
    assert isinstance(exc, RequestValidationError)
    return _AsciiJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)


class _AsciiJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")
