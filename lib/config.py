"""Validation of named choices and (de)serialisation of config dataclasses.

Every option that picks a variant by name goes through :func:`check_choice`, so
a misspelt value fails before any work and lists the valid names.  Configs are
plain dataclasses saved as JSON with every run and inside every checkpoint.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Iterable, Mapping, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A parameter value is invalid; the message lists what is valid."""


def check_choice(name: str, value: Any, valid: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``valid``; otherwise raise ConfigError listing them."""
    valid = list(valid)
    if value not in valid:
        shown = ", ".join(repr(v) for v in valid)
        raise ConfigError(f"invalid {name}={value!r}; valid choices: {shown}")
    return value


def name_list(value: Any) -> list[Any] | None:
    """A list-valued parameter as a list: ``None`` stays ``None``; a list/tuple is copied; a string
    may be one name, ``"a,b"``, or a list literal (``'["a", "b"]'``), because ``papermill -p``
    passes lists as plain strings (``-y`` passes real YAML lists)."""
    if value is None:
        return None
    if isinstance(value, Path):
        return [value]
    if not isinstance(value, str):
        return list(value)
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text.replace("'", '"'))
        except json.JSONDecodeError as error:
            raise ConfigError(f"cannot read the list {value!r}: {error}; write it as '[\"a\", \"b\"]' or a,b")
        return [str(v) for v in parsed]
    return [part.strip() for part in text.split(",") if part.strip()]


_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict, "None": type(None)}


def parse_type(annotation: str) -> tuple[type, ...]:
    """``"int | None"`` -> ``(int, NoneType)``: the annotations parameters and config fields use."""
    try:
        return tuple(_TYPES[part.strip()] for part in annotation.split("|"))
    except KeyError as error:
        raise ValueError(f"unsupported type {annotation!r}; use {' | '.join(_TYPES)}") from error


def accepts(types: tuple[type, ...], value: Any) -> bool:
    """Whether ``value`` fits ``types``: an int fits float, a tuple fits list, a bool fits only bool."""
    if isinstance(value, bool):  # bool is an int subclass: only a bool parameter takes True/False
        return bool in types
    if float in types and isinstance(value, int):
        return True
    if list in types and isinstance(value, tuple):
        return True
    return isinstance(value, types)


def type_names(types: tuple[type, ...]) -> str:
    return " | ".join("None" if t is type(None) else t.__name__ for t in types)


def check_types(config: Any) -> Any:
    """Every field of a dataclass ``config`` against its annotation (``steps=2.5`` for an int fails)."""
    for item in dataclasses.fields(config):
        value, types = getattr(config, item.name), parse_type(str(item.type))
        if not accepts(types, value):
            raise ConfigError(f"invalid {item.name}={value!r} ({type(value).__name__}); expected {type_names(types)}")
    return config


def check_positive(name: str, value: Any, allow_zero: bool = False) -> Any:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"invalid {name}={value!r}; must be a number {bound}")
    return value


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a dataclass (Paths become strings, tuples lists)."""
    def convert(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        if isinstance(value, Mapping):
            return {str(k): convert(v) for k, v in value.items()}
        return value
    return {k: convert(v) for k, v in dataclasses.asdict(config).items()}


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """Build ``cls`` from a dict, rejecting unknown keys (a typo must not pass silently)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} fields {unknown}; valid fields: {sorted(fields)}")
    return cls(**dict(data))


def check_resumable(stored: Mapping[str, Any], current: Mapping[str, Any], path: str | Path,
                    may_change: Iterable[str] = ()) -> None:
    """Refuse to resume a run whose stored config differs from ``current`` outside ``may_change``."""
    free = set(may_change)
    changed = sorted(k for k in current if k not in free and stored.get(k) != current[k])
    if changed:
        details = ", ".join(f"{k}: {stored.get(k)!r} -> {current[k]!r}" for k in changed)
        raise ConfigError(f"{path} was trained with other settings ({details}); use another run_name/run_dir "
                          "(or delete that folder), or the original settings to resume")
