"""Checks of values read from TOML tables: each takes the dotted TOML path of the value, so that an error
names it (``tool.repro-build.targets.cpu.extras[0]``) and says what was expected, with a hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reprobuild.errors import ConfigError


def type_name(value: object) -> str:
    return {str: "a string", int: "an integer", bool: "a boolean", list: "an array", dict: "a table"}.get(
        type(value), type(value).__name__
    )


def expect(value: object, kind: type, path: str, expected: str, hint: str | None = None) -> None:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"`{path}` must be {expected}, not {type_name(value)}", hint=hint)


def get_str(table: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str | None:
    if key not in table:
        return default
    value = table[key]
    expect(value, str, f"{path}.{key}", "a string")
    return str(value)


def str_list(table: Mapping[str, Any], key: str, path: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    if key not in table:
        return default
    value = table[key]
    expect(value, list, f"{path}.{key}", "an array of strings", hint=f'e.g. `{key} = ["a", "b"]`')
    for i, item in enumerate(value):
        expect(item, str, f"{path}.{key}[{i}]", "a string")
    return tuple(value)


def str_map(table: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
    if key not in table:
        return {}
    value = table[key]
    expect(value, dict, f"{path}.{key}", "a table of strings", hint=f'e.g. `{key} = {{ NAME = "value" }}`')
    out: dict[str, str] = {}
    for k, v in value.items():
        expect(v, str, f"{path}.{key}.{k}", "a string")
        out[str(k)] = str(v)
    return out


def did_you_mean(name: str, known: Iterable[str], what: str) -> str:
    """A hint: the closest known name, else the list of known names."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    return f"did you mean `{close[0]}`?" if close else f"{what}: {', '.join(names) or '(none)'}"


def check_defined(values: Sequence[str], known: Iterable[str], path: str, where: str) -> None:
    """Each of ``values`` (the array at ``path``) must name an entry of ``where``."""
    names = set(known)
    for i, value in enumerate(values):
        if value not in names:
            raise ConfigError(
                f"`{path}[{i}]`: {value!r} is not in {where}", hint=did_you_mean(value, names, f"defined in {where}")
            )


def check_keys(table: Mapping[str, Any], allowed: set[str], path: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"unknown key `{path}.{key}`", hint=did_you_mean(str(key), allowed, "known keys"))
