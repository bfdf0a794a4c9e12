"""Printable text: code-page mapping, control stripping and word wrap.

Everything a customer typed passes through `sanitize` before it reaches the printer, so
user text can never smuggle ESC/GS/DLE sequences into the job and never produces bytes
the printer would show as garbage.
"""

from __future__ import annotations

import unicodedata
from typing import Literal

Codepage = Literal["cp1252", "cp858"]

# Glues phone numbers and money amounts into one token for the wrapper; printed as a space.
NBSP = "\u00a0"

# Used only when the character is missing from the code page (cp858 has no dashes or
# typographic quotes, cp1252 has them), so the printout stays readable without names.
_TRANSLIT: dict[str, str] = {
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2015": "-",
    "\u2212": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": ",",
    "\u201b": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    "\u2026": "...",
    "\u2022": "*",
    "\u2027": "-",
    "\u2039": "<",
    "\u203a": ">",
    "\u2192": "->",
    "\u2190": "<-",
    "\u2122": "(TM)",
    "\u2030": "o/oo",
    "\u0152": "OE",
    "\u0153": "oe",
    "\u0160": "S",
    "\u0161": "s",
    "\u017d": "Z",
    "\u017e": "z",
    "\u0178": "Y",
    "\u0192": "f",
    "\u02c6": "^",
    "\u02dc": "~",
    "\u2020": "+",
    "\u2021": "++",
    "\u20ac": "EUR",
    "\u2116": "No.",
}

class _Table(dict[int, str]):
    """str.translate table that maps each character once, on first sight, and then at C
    speed: receipts are mostly German text, so few lines take the ASCII shortcut."""

    def __init__(self, codepage: Codepage) -> None:
        super().__init__()
        self.codepage = codepage

    def __missing__(self, code: int) -> str:
        r = self[code] = _map_char(chr(code), self.codepage)
        return r


_cache: dict[Codepage, _Table] = {"cp1252": _Table("cp1252"), "cp858": _Table("cp858")}


def _encodable(s: str, codepage: Codepage) -> bool:
    try:
        s.encode(codepage)
    except UnicodeEncodeError:
        return False
    return True


def _map_char(c: str, codepage: Codepage) -> str:
    if c == NBSP:
        return c
    cat = unicodedata.category(c)
    if cat in ("Zs", "Zl", "Zp") or c in "\t\n\r\v\f":
        return " "
    if cat in ("Cc", "Cf"):
        # Controls are how ESC/POS commands start; format characters (ZWJ, bidi marks,
        # soft hyphen, tag characters) carry no visible content.
        return ""
    if cat in ("Co", "Cs", "Cn"):
        return "?"
    if cat in ("Mn", "Me") and not _encodable(c, codepage):
        # Leftover combining marks after NFC, variation selectors, keycap enclosures.
        return ""
    if 0x1F3FB <= ord(c) <= 0x1F3FF:  # emoji skin-tone modifiers
        return ""
    if _encodable(c, codepage):
        return c
    if c in _TRANSLIT and _encodable(_TRANSLIT[c], codepage):
        return _TRANSLIT[c]
    base = "".join(d for d in unicodedata.normalize("NFKD", c) if not unicodedata.combining(d))
    if base and base.isprintable() and _encodable(base, codepage):
        return base
    name = unicodedata.name(c, "")
    return f"[{name.lower()}]" if name else "?"


def sanitize(text: str, codepage: Codepage = "cp1252") -> str:
    """NFC-normalise and map `text` onto what `codepage` can print; one line, no controls."""
    if text.isascii() and text.isprintable():
        return text
    return unicodedata.normalize("NFC", text).translate(_cache[codepage])


def glue(text: str) -> str:
    """Make `text` one unbreakable token (phone numbers, money amounts)."""
    return text.replace("\u202f", NBSP).replace(" ", NBSP)


def wrap(text: str, width: int, indent: int = 0, hang: int = 0) -> list[str]:
    """Greedy word wrap at spaces; tokens longer than a line are split, never dropped.

    `indent` prefixes every line, `hang` additionally every continuation line. Newlines
    in `text` start new lines. The result always has at least one (possibly empty) line.
    """
    width = max(1, width)
    if indent + hang > width // 2:
        indent = hang = 0
    lines: list[str] = []
    for para in text.split("\n"):
        pad = indent
        cur = ""
        for token in para.split(" "):
            if not token:
                continue
            room = width - pad
            if not cur:
                if len(token) <= room:
                    cur = token
                    continue
            elif len(cur) + 1 + len(token) <= room:
                cur = f"{cur} {token}"
                continue
            else:
                lines.append(" " * pad + cur)
                pad = indent + hang
                room = width - pad
                cur = ""
                if len(token) <= room:
                    cur = token
                    continue
            rest = token
            while len(rest) > room:
                lines.append(" " * pad + rest[:room])
                rest = rest[room:]
                pad = indent + hang
                room = width - pad
            cur = rest
        lines.append(" " * pad + cur if cur else "")
    return lines
