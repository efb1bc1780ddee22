"""Config sections as dataclasses: one source of truth for settings, defaults, docs and schema.

A config section is a dataclass whose fields are made with :func:`option` (a setting: default,
one-line doc, constraints) or :func:`section` (a nested section). From it:

- :func:`from_mapping` builds the section from a YAML mapping and lists every problem of the
  whole mapping at once, each line naming the key as the user writes it
  (``depth.torch.window: must be odd, got 4``);
- :func:`json_schema` gives its JSON schema (draft 2020-12), written to
  ``workflow/schemas/config.schema.yaml`` by ``talkhead config-schema --write``;
- :func:`to_mapping` turns it back into plain YAML data (a rule's ``params``, the defaults).

Cross-field rules: a section may define ``problems(self) -> list[tuple[str, str]]`` returning
``(field name, message)`` pairs; they are reported with the section's path. A section may also
define a class attribute ``SCHEMA_RULES`` (a dict merged into its JSON schema, e.g. an
``if``/``then``) when such a rule can be written in JSON schema.

Supported field types: ``bool``, ``int``, ``float`` (an integer is accepted), ``str``,
``tuple[T, ...]`` (written as a YAML list), ``dict`` (any mapping), ``T | None`` and nested
sections. Booleans are strict (``"yes"`` is not true); a whole-number float is accepted for an
integer, as JSON schema does. This module imports only the standard library.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import numbers
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import ConfigError

__all__ = [
    "Option",
    "check",
    "did_you_mean",
    "from_mapping",
    "json_schema",
    "option",
    "option_of",
    "section",
    "to_mapping",
]

T = TypeVar("T")

#: Key of a field's ``metadata`` under which :func:`option` stores its :class:`Option`.
META_KEY = "talkhead.config"

_BAD = object()  # a value that could not be converted (its problem is already recorded)


@dataclass(frozen=True)
class Option:
    """A setting's one-line doc and constraints (see :func:`option`)."""

    doc: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    odd: bool = False
    off: Any = None
    min_items: int | None = None
    min_length: int | None = None


def option(
    default: Any,
    doc: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: float | None = None,
    exclusive_maximum: float | None = None,
    choices: tuple[Any, ...] | list[Any] | None = None,
    odd: bool = False,
    off: Any = None,
    min_items: int | None = None,
    min_length: int | None = None,
) -> Any:
    """A config setting: a :func:`dataclasses.field` carrying its doc and constraints.

    Args:
        default: the default value (lists, dicts and sets are copied per instance).
        doc: one line saying what the setting does, with its unit.
        minimum, maximum, exclusive_minimum, exclusive_maximum: bounds of a number (of each
            item for a tuple field).
        choices: the admissible values.
        odd: the integer must be odd.
        off: a value that turns the setting off and is exempt from the other constraints
            (e.g. ``0`` for an optional odd window size); None: no such value (use a
            ``T | None`` field to admit null).
        min_items: least number of items of a tuple field.
        min_length: least length of a string (1: must not be empty).

    Raises:
        ValueError: ``doc`` spans several lines or is empty (a programming error).
    """
    if not doc or "\n" in doc:
        raise ValueError(f"option doc must be one non-empty line, got {doc!r}")
    meta = {
        META_KEY: Option(
            doc=doc,
            minimum=minimum,
            maximum=maximum,
            exclusive_minimum=exclusive_minimum,
            exclusive_maximum=exclusive_maximum,
            choices=tuple(choices) if choices is not None else None,
            odd=odd,
            off=off,
            min_items=min_items,
            min_length=min_length,
        )
    }
    if isinstance(default, list | dict | set):
        return dataclasses.field(
            default_factory=functools.partial(copy.deepcopy, default), metadata=meta
        )
    return dataclasses.field(default=default, metadata=meta)


def section(cls: type, doc: str) -> Any:
    """A nested config section: a field whose default is ``cls()`` and whose doc is ``doc``."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"section({cls!r}): not a dataclass")
    if not doc or "\n" in doc:
        raise ValueError(f"section doc must be one non-empty line, got {doc!r}")
    return dataclasses.field(default_factory=cls, metadata={META_KEY: Option(doc=doc)})


def option_of(field: dataclasses.Field) -> Option | None:
    """The :class:`Option` of a config field (None for a plain dataclass field)."""
    return field.metadata.get(META_KEY)


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def from_mapping(cls: type[T], data: Mapping[str, Any] | None, path: str = "") -> T:
    """Build config section ``cls`` (and its nested sections) from a YAML mapping.

    Missing keys take their defaults; ``None`` (an empty YAML section) is an empty mapping.
    A section's cross-field rules (``problems()``) are checked once its own settings are valid
    (unknown keys, reported too, do not hold them back).

    Args:
        cls: a config dataclass.
        data: the section as read from YAML.
        path: the section's key path in the config file (``"depth.torch"``; ``""`` for the
            whole file), used in the messages.

    Raises:
        ConfigError: one line per problem of the whole mapping, each starting with the key
            path: unknown keys (with the closest known name), wrong types, constraint
            breaches (a misspelt choice with the closest admissible one) and the sections'
            cross-field rules.
    """
    problems: list[str] = []
    result = _build(cls, data, path, problems)
    if problems:
        raise ConfigError("\n".join(problems))
    return result


def check(config: T, path: str = "") -> T:
    """Check a config section built in Python against its constraints; return it unchanged.

    Raises:
        ConfigError: as :func:`from_mapping`, naming the keys under ``path``.
    """
    from_mapping(type(config), to_mapping(config), path)
    return config


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _show(value: Any) -> str:
    """A value as the user wrote it in YAML (true, null, 'text', 2.0)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, tuple):
        return repr(list(value))
    return repr(value)


def _build(cls: type, data: Any, path: str, problems: list[str]) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        problems.append(f"{path or 'config'}: expected a mapping of settings, got {_show(data)}")
        return _BAD
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    # Unknown keys are reported but set nothing, so they do not keep the settings' own checks
    # or the cross-field rules from running: one run lists every problem.
    for key in data:
        if key not in fields:
            problems.append(_unknown(str(key), path, list(fields)))
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    invalid = False
    for name, f in fields.items():
        if name not in data:
            continue
        where = _join(path, name)
        value = _convert(hints[name], data[name], where, problems)
        if value is _BAD:
            invalid = True
            continue
        opt = option_of(f)
        breaches = _breaches(opt, value, where, data[name]) if opt is not None else []
        problems.extend(breaches)
        invalid = invalid or bool(breaches)
        kwargs[name] = value
    if invalid:
        return _BAD
    config = cls(**kwargs)
    rules = getattr(config, "problems", None)
    if callable(rules):
        broken = [f"{_join(path, name)}: {message}" for name, message in rules()]
        if broken:
            problems.extend(broken)
            return _BAD
    return config


def did_you_mean(key: str, names: list[str] | tuple[str, ...]) -> str:
    """``" (did you mean NAME?)"`` for the known name closest to a mistyped ``key``, else ``""``."""
    close = difflib.get_close_matches(key, list(names), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def _unknown(key: str, path: str, names: list[str]) -> str:
    return (
        f"{_join(path, key)}: unknown setting{did_you_mean(key, names)}; known: {', '.join(names)}"
    )


def _convert(tp: Any, value: Any, path: str, problems: list[str]) -> Any:
    """``value`` as type ``tp``, or :data:`_BAD` after recording the problem."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        inner = [a for a in args if a is not type(None)]
        if value is None and len(inner) < len(args):
            return None
        if len(inner) != 1:
            raise TypeError(f"unsupported config type {tp!r}")
        return _convert(inner[0], value, path, problems)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path, problems)
    expected = None
    if tp is bool:
        if isinstance(value, bool):
            return value
        expected = "true or false"
    elif tp is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        expected = "an integer"
    elif tp is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
        expected = "a number"
    elif tp is str:
        if isinstance(value, str):
            return value
        expected = "a string"
    elif origin is tuple:
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"unsupported config type {tp!r} (use tuple[T, ...])")
        if isinstance(value, list | tuple):
            items = [_convert(args[0], v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
            return _BAD if any(v is _BAD for v in items) else tuple(items)
        expected = "a list"
    elif tp is dict or origin is dict:
        if isinstance(value, Mapping):
            return dict(value)
        expected = "a mapping"
    else:
        raise TypeError(f"unsupported config type {tp!r}")
    problems.append(f"{path}: expected {expected}, got {_show(value)}")
    return _BAD


def _breaches(opt: Option, value: Any, path: str, raw: Any) -> list[str]:
    """The constraint breaches of a converted value (one line each); ``raw`` as written."""
    if isinstance(value, tuple):
        out = []
        if opt.min_items is not None and len(value) < opt.min_items:
            noun = "item" if opt.min_items == 1 else "items"
            out.append(f"{path}: needs at least {opt.min_items} {noun}, got {_show(raw)}")
        for i, (item, raw_item) in enumerate(zip(value, raw, strict=True)):
            out.extend(_breaches(opt, item, f"{path}[{i}]", raw_item))
        return out
    problem = _scalar_breach(opt, value, raw)
    return [f"{path}: {problem}"] if problem else []


def _scalar_breach(opt: Option, value: Any, raw: Any) -> str | None:
    if value is None or isinstance(value, dict) or (opt.off is not None and value == opt.off):
        return None
    got = f"got {_show(raw)}"
    if opt.choices is not None and value not in opt.choices:
        hint = ""
        if isinstance(value, str):
            hint = did_you_mean(value, [c for c in opt.choices if isinstance(c, str)])
        return f"must be one of {', '.join(_show(c) for c in opt.choices)}; {got}{hint}"
    if isinstance(value, str):
        if opt.min_length is not None and len(value) < opt.min_length:
            if opt.min_length == 1:
                return "must not be empty"
            return f"must be at least {opt.min_length} characters long, {got}"
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    bounds = (
        (opt.minimum, ">=", lambda b: value >= b),
        (opt.exclusive_minimum, ">", lambda b: value > b),
        (opt.maximum, "<=", lambda b: value <= b),
        (opt.exclusive_maximum, "<", lambda b: value < b),
    )
    for bound, op, ok in bounds:
        if bound is not None and not ok(bound):
            return f"must be {op} {_show(bound)}{_or_off(opt)}, {got}"
    if opt.odd and value % 2 == 0:
        return f"must be odd{_or_off(opt)}, {got}"
    return None


def _or_off(opt: Option) -> str:
    return f" (or {_show(opt.off)}: off)" if opt.off is not None else ""


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def to_mapping(config: Any) -> dict[str, Any]:
    """A config section as plain YAML data: nested sections as dicts, tuples as lists."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"to_mapping needs a config dataclass instance, got {config!r}")
    return {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_mapping(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def json_schema(cls: type) -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of config section ``cls``.

    An object that admits only the section's keys (``additionalProperties: false``), each
    property with its type, ``description`` (the one-line doc), ``default`` and constraints
    (``minimum``, ``exclusiveMinimum``, ``enum``, ``minItems``, odd as
    ``not: {multipleOf: 2}``, an ``off`` value as ``anyOf: [{const: off}, ...]``); nested
    sections recursively; the class's ``SCHEMA_RULES`` merged in. No key is required: every
    setting has a default.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"json_schema({cls!r}): not a dataclass")
    schema: dict[str, Any] = {"type": "object"}
    doc = (cls.__doc__ or "").strip().splitlines()
    if doc:
        schema["description"] = doc[0].strip()
    schema["additionalProperties"] = False
    hints = _hints(cls)
    props = {}
    for f in dataclasses.fields(cls):
        if f.init:
            props[f.name] = _property_schema(hints[f.name], f)
    schema["properties"] = props
    schema.update(copy.deepcopy(getattr(cls, "SCHEMA_RULES", {})))
    return schema


def _type_schema(tp: Any) -> dict[str, Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        inner = [a for a in args if a is not type(None)]
        schema = _type_schema(inner[0])
        schema["type"] = [schema["type"], "null"]
        return schema
    if dataclasses.is_dataclass(tp):
        return json_schema(tp)
    if tp in _JSON_TYPES:
        return {"type": _JSON_TYPES[tp]}
    if origin is tuple:
        return {"type": "array", "items": _type_schema(args[0])}
    if tp is dict or origin is dict:
        return {"type": "object"}
    raise TypeError(f"unsupported config type {tp!r}")


def _constraint_schema(opt: Option) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (
        ("minimum", opt.minimum),
        ("exclusiveMinimum", opt.exclusive_minimum),
        ("maximum", opt.maximum),
        ("exclusiveMaximum", opt.exclusive_maximum),
        ("minLength", opt.min_length),
    ):
        if value is not None:
            out[key] = value
    if opt.choices is not None:
        out["enum"] = list(opt.choices)
    if opt.odd:
        out["not"] = {"multipleOf": 2}
    return out


def _property_schema(tp: Any, field: dataclasses.Field) -> dict[str, Any]:
    opt = option_of(field)
    schema = _type_schema(tp)
    if opt is None:
        return schema
    schema.pop("description", None)
    schema = {"type": schema.pop("type"), "description": opt.doc, **schema}
    if dataclasses.is_dataclass(tp):
        return schema
    default = _default(field)
    if default is not dataclasses.MISSING:
        schema["default"] = _plain(default)
    constraints = _constraint_schema(opt)
    if schema["type"] == "array":
        schema["items"].update(constraints)
        if opt.min_items is not None:
            schema["minItems"] = opt.min_items
    elif opt.off is not None and constraints:
        schema["anyOf"] = [{"const": opt.off}, constraints]
    else:
        schema.update(constraints)
    return schema
