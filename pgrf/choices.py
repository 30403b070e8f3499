"""Enumerated options: a ``Literal`` field of an options dataclass is checked here, in one line naming its flag."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal

from pgrf.errors import PgrfError


def literal_choices(hint: Any) -> tuple[Any, ...] | None:
    """The values of a ``Literal`` type, also inside ``X | None``; None for any other type."""
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    inner = [choices for arg in typing.get_args(hint) if (choices := literal_choices(arg)) is not None]
    return inner[0] if inner else None


def check_choices(options: Any) -> None:
    """A one-line error for the first ``Literal`` field of the dataclass ``options`` whose value is not one of its
    values (None passes where the field allows it); the message names the field as its flag, ``--snake-case``."""
    hints = typing.get_type_hints(type(options))
    for field in dataclasses.fields(options):
        choices = literal_choices(hints[field.name])
        value = getattr(options, field.name)
        if choices is not None and value not in choices and value is not None:
            flag = "--" + field.name.replace("_", "-")
            raise PgrfError(f"{flag} must be one of {', '.join(map(str, choices))}; got {value!r}")
