"""Plain record classes for the start path, in place of dataclasses.

On this machine, importing dataclasses (which imports inspect) takes about 7 ms and
creating each dataclass about 0.5 ms, both on every `donkey run`. A record class writes its
own __init__ and names its attributes in FIELDS. Record adds equality, repr and to_dict.
"""

from __future__ import annotations


class Record:
    FIELDS: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self.values() == other.values()

    # Unhashable, like a dataclass that compares by value. FrozenRecord hashes its values.
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        items = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS)
        return f"{type(self).__name__}({items})"

    def values(self) -> tuple:
        return tuple(getattr(self, name) for name in self.FIELDS)

    def to_dict(self) -> dict:
        """Return the fields as a dict; nested records and containers are not copied."""
        return {name: getattr(self, name) for name in self.FIELDS}


class FrozenRecord(Record):
    """A record that is not changed after __init__, so it can be a dict key or set member."""

    def __hash__(self) -> int:
        return hash(self.values())
