"""JSON for the start path, without the json module.

Importing json imports re, and re imports enum, functools and collections: about 6 ms on
every `donkey run`, a fifth of a container start. The state files, the parent/child channel
and image.json contain only dicts, lists, strings, numbers, booleans and None. dumps() writes
them exactly as json.dumps() does with its defaults, and loads() reads any JSON text as
json.loads() does. loads() also takes a few texts that json.loads() rejects: control
characters inside strings (as strict=False allows) and numbers such as 01 or .5.
tests/unit/test_jsontext.py compares both functions with json.

loads() runs in Python, so code that reads many documents at once, such as `donkey ps`
with a thousand containers, is faster with json itself.
"""

from __future__ import annotations

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                  "\r": "\\r", "\t": "\\t"}
_UNESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
              "t": "\t"}
_WHITESPACE = " \t\n\r"
_NUMBER_CHARS = frozenset("+-0123456789.eE")
_CONSTANTS = (("true", True), ("false", False), ("null", None), ("NaN", float("nan")),
              ("Infinity", float("inf")), ("-Infinity", float("-inf")))


def dumps(value) -> str:
    """Return value as JSON text, the same text json.dumps(value) returns."""
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts)


def _encode(value, parts: list[str]) -> None:
    if isinstance(value, str):
        parts.append(_quote(value))
    elif value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, int):
        parts.append(int.__repr__(value))
    elif isinstance(value, float):
        parts.append(_float(value))
    elif isinstance(value, dict):
        parts.append("{")
        first = True
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"keys must be str, not {type(key).__name__}")
            if not first:
                parts.append(", ")
            first = False
            parts.append(_quote(key))
            parts.append(": ")
            _encode(item, parts)
        parts.append("}")
    elif isinstance(value, (list, tuple)):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(", ")
            _encode(item, parts)
        parts.append("]")
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _quote(text: str) -> str:
    # json.dumps escapes '"', '\' and every character outside ' '..'~' (ensure_ascii).
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    out = ['"']
    for char in text:
        if " " <= char <= "~":
            out.append(_SHORT_ESCAPES.get(char, char))
        elif char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        else:
            code = ord(char)
            if code > 0xFFFF:
                code -= 0x10000
                out.append(f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}")
            else:
                out.append(f"\\u{code:04x}")
    out.append('"')
    return "".join(out)


def loads(text: str | bytes):
    """Parse JSON text (str, or UTF-8 bytes) and return the value, or raise ValueError."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")
    try:
        value, index = _value(text, _skip(text, 0))
    except IndexError:
        raise ValueError("invalid JSON: the text ends early") from None
    index = _skip(text, index)
    if index != len(text):
        raise ValueError(f"invalid JSON: extra data at character {index}")
    return value


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in _WHITESPACE:
        index += 1
    return index


def _value(text: str, index: int):
    char = text[index]
    if char == '"':
        return _string(text, index + 1)
    if char == "{":
        return _object(text, index + 1)
    if char == "[":
        return _array(text, index + 1)
    for word, constant in _CONSTANTS:
        if text.startswith(word, index):
            return constant, index + len(word)
    end = index
    while end < len(text) and text[end] in _NUMBER_CHARS:
        end += 1
    token = text[index:end]
    if not token or token[0] == "+":
        raise ValueError(f"invalid JSON: unexpected {char!r} at character {index}")
    try:
        if "." in token or "e" in token or "E" in token:
            return float(token), end
        return int(token), end
    except ValueError:
        raise ValueError(f"invalid JSON: invalid number {token!r} at character {index}") from None


def _string(text: str, index: int) -> tuple[str, int]:
    chunks = []
    while True:
        quote = text.find('"', index)
        if quote < 0:
            raise ValueError(f"invalid JSON: unterminated string at character {index - 1}")
        backslash = text.find("\\", index, quote)
        if backslash < 0:
            chunks.append(text[index:quote])
            return "".join(chunks), quote + 1
        chunks.append(text[index:backslash])
        escape = text[backslash + 1]
        if escape == "u":
            code, index = _hex4(text, backslash + 2), backslash + 6
            if 0xD800 <= code <= 0xDBFF and text.startswith("\\u", index):
                low = _hex4(text, index + 2)
                if 0xDC00 <= low <= 0xDFFF:
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    index += 6
            chunks.append(chr(code))
        elif escape in _UNESCAPES:
            chunks.append(_UNESCAPES[escape])
            index = backslash + 2
        else:
            raise ValueError(f"invalid JSON: invalid escape \\{escape} at character {backslash}")


def _hex4(text: str, index: int) -> int:
    digits = text[index:index + 4]
    if len(digits) != 4 or not all(char in "0123456789abcdefABCDEF" for char in digits):
        raise ValueError(f"invalid JSON: invalid \\u escape at character {index - 2}")
    return int(digits, 16)


def _object(text: str, index: int) -> tuple[dict, int]:
    result: dict = {}
    index = _skip(text, index)
    if text[index] == "}":
        return result, index + 1
    while True:
        if text[index] != '"':
            raise ValueError(f"invalid JSON: expected a key at character {index}")
        key, index = _string(text, index + 1)
        index = _skip(text, index)
        if text[index] != ":":
            raise ValueError(f"invalid JSON: expected ':' at character {index}")
        result[key], index = _value(text, _skip(text, index + 1))
        index = _skip(text, index)
        if text[index] == "}":
            return result, index + 1
        if text[index] != ",":
            raise ValueError(f"invalid JSON: expected ',' or '}}' at character {index}")
        index = _skip(text, index + 1)


def _array(text: str, index: int) -> tuple[list, int]:
    result: list = []
    index = _skip(text, index)
    if text[index] == "]":
        return result, index + 1
    while True:
        item, index = _value(text, index)
        result.append(item)
        index = _skip(text, index)
        if text[index] == "]":
            return result, index + 1
        if text[index] != ",":
            raise ValueError(f"invalid JSON: expected ',' or ']' at character {index}")
        index = _skip(text, index + 1)
