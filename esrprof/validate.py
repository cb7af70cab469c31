"""One way to read a record back: every field of a frozen record dataclass, checked.

Results, their prediction blocks, GPU specs and the report's inputs all come back from files
someone may have edited. :func:`record` builds a dataclass from its JSON object by the
dataclass's own annotations, checking each field through :mod:`esrprof.jsonio`'s field
readers: a number is a finite number of its domain (an ``int`` a non-negative integer, a
``float`` a non-negative figure unless ``domains`` says ``"positive"``, ``"share"`` or
``"any"``), a string is a string, a tuple a list of its items. A missing field takes the
dataclass's default where it has one. Every bad value is one :class:`ResultFileError` line that
names the file and the dotted field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from esrprof.errors import ResultFileError
from esrprof.jsonio import array, mapping, number, text

# A nested reader: (value, dotted field name, source) -> the field's value.
Reader = Callable[[Any, str, str], Any]


def record(cls: type, item: Any, where: str, source: str, *,
           domains: Mapping[str, str] | None = None,
           nested: Mapping[str, Reader] | None = None,
           limits: Mapping[str, float] | None = None) -> Any:
    """``cls(**fields)`` from the JSON object ``item`` found at ``where`` in ``source``.

    ``domains`` maps a numeric field to its domain (see :func:`esrprof.jsonio.number`);
    ``nested`` maps a field to a reader of its own (a nested record, a tuple of records);
    ``limits`` maps a numeric field to its largest value.
    """
    item = mapping(item, where, source)
    domains = domains or {}
    nested = nested or {}
    limits = limits or {}
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        name = f"{where}.{f.name}" if where else f.name
        if f.name not in item and _has_default(f):
            continue
        value = item.get(f.name)
        if f.name in nested:
            values[f.name] = nested[f.name](value, name, source)
            continue
        kind = str(f.type).replace(" ", "")
        optional = kind.endswith("|None")
        kind = kind.removesuffix("|None")
        values[f.name] = field_value(kind, value, name, source, optional=optional,
                                     domain=domains.get(f.name), high=limits.get(f.name))
    return cls(**values)


def field_value(kind: str, value: Any, name: str, source: str, *, optional: bool = False,
                domain: str | None = None, high: float | None = None) -> Any:
    """One value of the annotated ``kind`` ("int", "float", "str", "bool", "tuple[int,...]",
    "tuple[str,...]", "tuple[tuple[int,...],...]", "dict[...]")."""
    if value is None and optional:
        return None
    if kind == "int":
        return number(value, name, source, optional=False, integer=True,
                      low=domain or "non-negative", high=high)
    if kind == "float":
        value = number(value, name, source, optional=False, low=domain or "non-negative",
                       high=high)
        return float(value)
    if kind == "str":
        return text(value, name, source)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ResultFileError(f"{source}: {name} is {value!r}, not true or false")
        return value
    if kind.startswith("dict["):
        return dict(mapping(value, name, source))
    if kind.startswith("tuple[") and kind.endswith(",...]"):
        inner = kind[len("tuple["):-len(",...]")]
        return tuple(field_value(inner, v, f"{name}[{i}]", source, domain=domain, high=high)
                     for i, v in enumerate(array(value, name, source)))
    raise TypeError(f"validate.record cannot read a field of type {kind!r} ({name})")


def records(reader: Reader) -> Reader:
    """A reader of a list of what ``reader`` reads, as a tuple."""
    def read(value: Any, name: str, source: str) -> tuple[Any, ...]:
        return tuple(reader(v, f"{name}[{i}]", source)
                     for i, v in enumerate(array(value, name, source)))

    return read


def shape(value: Any, name: str, source: str) -> tuple[int, ...]:
    """A tensor shape: a non-empty list of positive integers."""
    dims = array(value, name, source)
    if not dims:
        raise ResultFileError(f"{source}: {name} is empty, not a shape")
    return tuple(number(d, f"{name}[{i}]", source, low="positive", optional=False, integer=True)
                 for i, d in enumerate(dims))


def _has_default(f: dataclasses.Field) -> bool:
    return (f.default is not dataclasses.MISSING
            or f.default_factory is not dataclasses.MISSING)  # type: ignore[misc]


__all__ = ["field_value", "record", "records", "shape"]
