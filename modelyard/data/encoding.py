"""Turning a data file's bytes into text without ever decoding them wrongly in silence.

- A byte order mark names the encoding: UTF-8, UTF-16 or UTF-32 (little or big endian).
- Without one the file must be UTF-8. A file that is UTF-8 with a few undecodable bytes (it
  also holds correctly encoded non-ASCII characters, at least as many) is read with U+FFFD in
  their place, for the data gate's undecodable-bytes expectation to count
  (`validation.max_bad_encoding_fraction`).
- Anything else — no valid UTF-8 beyond ASCII around the undecodable bytes, or NUL bytes that
  say UTF-16 without a mark — is refused, naming what charset-normalizer detects and the fix:
  `data.encoding` in params.yaml names the file's encoding, which is then used as it is (its
  undefined bytes, if any, counted by the same expectation).
- A `data.encoding` that contradicts the file (a byte order mark of another encoding, or a
  single-byte encoding named for a file that is valid UTF-8 beyond ASCII) is refused as well:
  it would turn "café" into "cafÃ©".
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Any

# Byte order marks, longest first (UTF-32 LE's starts with UTF-16 LE's): the codec that reads
# the file with it, the name a message uses, and the data.encoding values that agree with it.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32", ("utf-32", "utf-32-le")),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32", ("utf-32", "utf-32-be")),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8", ("utf-8", "utf-8-sig")),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16", ("utf-16", "utf-16-le")),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16", ("utf-16", "utf-16-be")),
)
# charset-normalizer reads at most this much (it samples within it): a bound on its time.
_DETECT_BYTES = 8 * 1024 * 1024
# Windows-1252 is what most spreadsheet and database exports write when they do not write
# UTF-8; charset-normalizer often ranks it level with cp1250 and others on English text.
_PREFERRED = "cp1252"
_CHAOS_MARGIN = 5.0


class EncodingError(ValueError):
    """Bytes that cannot be read as text without guessing; the message names the fix."""


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # the codec the bytes were decoded with
    how: str  # why that one, in words
    undecodable: int = 0  # bytes (sequences) read as U+FFFD


def codec_name(name: str) -> str:
    """The codec's canonical name ('UTF8' → 'utf-8'); LookupError for an unknown one."""
    return codecs.lookup(name).name


def _bom(raw: bytes) -> tuple[str, str, tuple[str, ...]] | None:
    for mark, codec, label, agrees in _BOMS:
        if raw.startswith(mark):
            return codec, label, agrees
    return None


def _decode(raw: bytes, codec: str, how: str) -> Decoded:
    """Undefined bytes become U+FFFD, for validation to count rather than a first one to stop."""
    text = raw.decode(codec, errors="replace").removeprefix("\ufeff")
    return Decoded(text, codec_name(codec), how, text.count("\ufffd"))


def decode(raw: bytes, declared: str | None, where: str) -> Decoded:
    """The text of a data file (see the module's docstring); EncodingError, naming `where`."""
    bom = _bom(raw)
    if declared is not None:
        return _declared(raw, declared, bom, where)
    if bom is not None:
        return _decode(raw, bom[0], f"its {bom[1]} byte order mark")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return _not_utf8(raw, error.start, where)
    if "\x00" in text[:65536]:
        _refuse_nul(raw, where)
    return Decoded(text, "utf-8", "valid UTF-8")


def _declared(
    raw: bytes, declared: str, bom: tuple[str, str, tuple[str, ...]] | None, where: str
) -> Decoded:
    name = codec_name(declared)
    if bom is not None and name not in bom[2]:
        raise EncodingError(
            f"{where}: starts with a {bom[1]} byte order mark, but data.encoding is "
            f"{declared!r}: remove data.encoding from params.yaml (the mark names the encoding)"
        )
    if bom is None and not name.startswith("utf") and not raw.isascii():
        _refuse_if_utf8(raw, declared, where)
    return _decode(raw, declared, "data.encoding")


def _refuse_if_utf8(raw: bytes, declared: str, where: str) -> None:
    """A file that is valid UTF-8 beyond ASCII read as a single-byte encoding is mojibake."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return
    line = next(line for line in text.splitlines() if not line.isascii())
    start = next(i for i, c in enumerate(line) if ord(c) > 127)
    sample = line[max(0, start - 20) : start + 20]
    wrong = sample.encode("utf-8").decode(declared, errors="replace")
    raise EncodingError(
        f"{where}: data.encoding is {declared!r}, but the file is valid UTF-8 with characters "
        f"beyond ASCII, which {declared} would misread ({sample!r} would read as {wrong!r}): "
        "remove data.encoding from params.yaml"
    )


def _not_utf8(raw: bytes, first: int, where: str) -> Decoded:
    text = raw.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - raw.count("\ufffd".encode())
    beyond_ascii = len(text) - len(text.encode("ascii", "ignore")) - text.count("\ufffd")
    if beyond_ascii and beyond_ascii >= bad:
        # UTF-8 with damage: the characters around the bad bytes decode, so this is no other
        # encoding; the undecodable-bytes expectation counts the rows that hold them.
        return Decoded(text, "utf-8", f"UTF-8 with {bad} undecodable bytes", bad)
    line = raw.count(b"\n", 0, first) + 1
    start = max(raw.rfind(b"\n", 0, first) + 1, first - 30)
    end = raw.find(b"\n", first)
    shown = raw[start : min(len(raw) if end < 0 else end, first + 30)].rstrip(b"\r")
    found = detect(raw)
    suggestion = found[0] if found else _PREFERRED
    detected = (
        f"charset-normalizer detects {', '.join(found)} (likeliest first)"
        if found
        else "charset-normalizer recognises no text encoding in it"
    )
    raise EncodingError(
        f"{where}: not UTF-8 ({bad} undecodable bytes, the first on line {line}: "
        f"{shown!r}); {detected}. Name the file's encoding in params.yaml "
        f"(data.encoding: {suggestion}) or save the file as UTF-8; data.encoding: utf-8 reads "
        "it as UTF-8 and lets validation.max_bad_encoding_fraction count the undecodable bytes"
    )


def _refuse_nul(raw: bytes, where: str) -> None:
    """NUL bytes in a file without a byte order mark: UTF-16 or UTF-32 without the mark."""
    found = [name for name in detect(raw) if name.startswith("utf_16") or name.startswith("utf_32")]
    if not found:
        return  # a stray NUL: the control-character expectation counts it
    raise EncodingError(
        f"{where}: holds NUL bytes and no byte order mark; charset-normalizer detects "
        f"{', '.join(found)}: name it in params.yaml (data.encoding: {found[0]}) or save the "
        "file as UTF-8"
    )


def detect(raw: bytes) -> list[str]:
    """The encodings charset-normalizer finds plausible for `raw`, likeliest first; at most
    five. Each of its matches is named by the commonest encoding that decodes the bytes the
    same way (cp1252 for a match that cp1252, latin_1 and others would all read alike), and of
    matches about as likely (within `_CHAOS_MARGIN` points of "chaos"), those a Windows code
    page reads come first: on Western text charset-normalizer ranks mac_latin2 or cp775 level
    with or above cp1252, which is what exports actually use."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(raw[:_DETECT_BYTES]))
    if not matches:
        return []
    best = min(match.percent_chaos for match in matches)

    def named(match: Any) -> tuple[int, str]:
        same = [match.encoding, *match.could_be_from_charset]
        windows = [name for name in same if name.startswith("cp125")]
        name = _PREFERRED if _PREFERRED in same else (windows or [match.encoding])[0]
        likely = match.percent_chaos <= best + _CHAOS_MARGIN
        rank = 0 if likely and name == _PREFERRED else 1 if likely and windows else 2
        return rank, name

    found: list[str] = []
    for _, name in sorted((named(match) for match in matches), key=lambda pair: pair[0]):
        if name not in found:
            found.append(name)
    return found[:5]
