"""Docker's size and CPU-count syntax for flags such as -m 100m and --cpus 1.5."""

from __future__ import annotations

from donkey.errors import InvalidArgument

# Docker's RAMInBytes: binary multiples, case-insensitive, an optional trailing "b", that is
# ^(\d+(\.\d+)?)\s*([kmgtp]?)(b|ib)?$. It is parsed by hand because importing re costs
# about 5 ms on every `donkey run -m`.
_MULTIPLIER = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_bytes(text: str, *, allow_unlimited: bool = False, flag: str = "size") -> int:
    """Parse "100m", "1.5g", "512" (bytes) or "-1" (when allow_unlimited) into bytes."""
    value = str(text).strip()
    if allow_unlimited and value == "-1":
        return -1

    parsed = _split_size(value)
    if parsed is None:
        accepted = "a number with an optional unit b, k, m, g or t (binary: 1k = 1024)"
        if allow_unlimited:
            accepted += ", or -1 for unlimited"
        raise InvalidArgument(f"invalid {flag} {text!r}: use {accepted}", value=text)

    number, unit = parsed
    return int(float(number) * _MULTIPLIER[unit])


def _split_size(value: str) -> tuple[str, str] | None:
    """Split "1.5 GiB" into ("1.5", "g"), or return None when value is not a size."""
    rest = value.lower()
    if rest.endswith("ib"):
        rest = rest[:-2]
    elif rest.endswith("b"):
        rest = rest[:-1]
    unit = ""
    if rest and rest[-1] in "kmgtp":
        unit = rest[-1]
        rest = rest[:-1]
    number = rest.rstrip()
    parts = number.split(".")
    if len(parts) > 2 or not all(part.isdecimal() for part in parts):
        return None
    return number, unit


def parse_cpus(text: str, *, flag: str = "--cpus") -> float:
    """Parse a CPU count such as "1.5"; it must be greater than 0."""
    try:
        value = float(str(text).strip())
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise InvalidArgument(
            f"invalid {flag} {text!r}: use a number of CPUs greater than 0, such as 0.5 or 2",
            value=text,
        )
    return value
