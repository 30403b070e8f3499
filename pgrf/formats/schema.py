"""Typed JSON documents: frozen dataclasses read with validation and written in field order.

A contract is a dataclass whose fields carry their JSON types (``int``, ``float``, ``str``, ``bool``,
``X | None``, ``list[X]``, ``dict[str, X]``, ``Any``, nested contracts, string enums). A field's JSON
key is its name unless ``key("...")`` says otherwise (``class`` is a Python keyword); a field made with
``omitted()`` (or every field of a contract whose ``OMIT_NONE`` is true) is left out while None. Reading checks
every field and reports the first problem as one line naming the file and the field's path; writing
keeps field order, so documents written through a contract keep their bytes.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from typing import Any, TypeVar

from pgrf.errors import PgrfError

T = TypeVar("T")


class FormatError(PgrfError):
    """A file that does not follow its contract: the message names the file, the field and the fix."""


class Invalid(ValueError):
    """A field's value that does not fit its contract (raised in ``__post_init__`` checks too)."""


def key(name: str, **options: Any) -> Any:
    """A field stored under another JSON key: ``klass: int = key("class")``."""
    return dataclasses.field(metadata={"key": name}, **options)


def omitted(**options: Any) -> Any:
    """A field that defaults to None and is left out of the JSON while None."""
    return dataclasses.field(default=None, metadata={"omit_none": True}, **options)


def from_json(cls: type[T], data: Any, where: str, fix: str) -> T:
    """Build ``cls`` from parsed JSON; a mismatch is a FormatError ``"<where>: field '<path>' …; <fix>"``."""
    try:
        return _build(cls, data, "")
    except Invalid as problem:
        raise FormatError(f"{where}: {problem}; {fix}") from None


def check_matrix(value: list[list[float]], size: int, name: str) -> None:
    """Raise Invalid unless ``value`` is a ``size``×``size`` matrix."""
    if len(value) != size or any(len(row) != size for row in value):
        raise Invalid(f"field '{name}' must be a {size}×{size} matrix")


def to_json(document: Any) -> Any:
    """The JSON value of a contract (dicts in field order, enums as their values, None fields kept)."""
    if dataclasses.is_dataclass(document) and not isinstance(document, type):
        omit = getattr(type(document), "OMIT_NONE", False)
        return {_key(f): to_json(getattr(document, f.name)) for f in dataclasses.fields(document)
                if not ((omit or f.metadata.get("omit_none")) and getattr(document, f.name) is None)}
    if isinstance(document, enum.Enum):
        return document.value
    if isinstance(document, (list, tuple)):
        return [to_json(item) for item in document]
    if isinstance(document, dict):
        return {name: to_json(value) for name, value in document.items()}
    return document


def _key(field: dataclasses.Field) -> str:
    return field.metadata.get("key", field.name)


@functools.cache
def _fields(cls: type) -> tuple[tuple[dataclasses.Field, Any], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f, hints[f.name]) for f in dataclasses.fields(cls))


def _build(cls: type[T], data: Any, path: str) -> T:
    if not isinstance(data, dict):
        raise Invalid(f"{_name(path)} must be an object; got {_kind(data)}")
    values = {}
    for field, hint in _fields(cls):
        name = _key(field)
        inner = f"{path}.{name}" if path else name
        if name in data:
            values[field.name] = _value(hint, data[name], inner)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise Invalid(f"field '{inner}' is missing")
    try:
        return cls(**values)
    except Invalid as problem:
        raise Invalid(f"{_name(path)}: {problem}") from None


def _value(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [option for option in options if option is not type(None)]
        return _value(inner, value, path)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise Invalid(f"field '{path}' must be a list; got {_kind(value)}")
        return [_value(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(hint)
        if not isinstance(value, dict):
            raise Invalid(f"field '{path}' must be an object; got {_kind(value)}")
        return {name: _value(item, v, f"{path}.{name}") for name, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            choices = ", ".join(repr(member.value) for member in hint)
            raise Invalid(f"field '{path}' must be one of {choices}; got {value!r}") from None
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return value  # JSON does not tell 1.0 from 1; keep the number as written
    if not isinstance(value, hint) or (hint in (int, float) and isinstance(value, bool)):
        raise Invalid(f"field '{path}' must be {hint.__name__}; got {_kind(value)}")
    return value


def _name(path: str) -> str:
    return f"field '{path}'" if path else "the document"


def _kind(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__} {value!r}"[:60]
