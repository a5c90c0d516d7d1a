"""The workflow config checked against its schema, one short line per mistake, before
snakemake's `validate` (whose message prints the whole schema and config) fills the defaults.

Each mistake names the key's dotted path and what is wrong; an unknown key also gets the
allowed keys and the closest one. Renamed keys are refused naming their new name. Values given
with `--config` arrive as text below the top level (Snakemake reads them with YAML's
BaseLoader); `type_command_line_values` turns them into the numbers and booleans the schema
wants.

The Snakefile calls this at parse time, so it uses the standard library only: the caller reads
the schema (YAML) and passes it as a dict.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from .errors import ConfigError

SCHEMA_FILE = "workflow/schemas/config.schema.yaml"
WHERE_TO_LOOK = f"config.yaml documents every key; {SCHEMA_FILE} has their types and limits"

# old dotted key -> new dotted key (same meaning, same values)
RENAMED_KEYS = {
    "train.batch_size": "train.patches_per_step",
    "segment.batch_size": "segment.tiles_per_step",
    "segment.images_per_job": "segment.images_per_chunk",
}

# JSON-schema type -> (Python types, how a message names it)
_TYPES = {
    "object": (Mapping, "a mapping of keys to values"),
    "array": (list, "a list"),
    "string": (str, "text"),
    "integer": (int, "a whole number"),
    "number": ((int, float), "a number"),
    "boolean": (bool, "true or false"),
}
# The schema keywords `config_problems` checks, and those that check nothing.
CHECKED_KEYWORDS = frozenset({
    "type", "properties", "additionalProperties", "propertyNames", "items", "enum",
    "minimum", "maximum", "exclusiveMinimum", "multipleOf", "pattern", "minLength",
    "minItems", "maxItems", "uniqueItems",
})
ANNOTATIONS = frozenset({"$schema", "$id", "description", "default"})


def check_renamed_keys(config: dict) -> None:
    """A ConfigError naming every renamed key that `config` still uses, and its new name."""
    found = []
    for old, new in RENAMED_KEYS.items():
        section, key = old.split(".")
        if isinstance(config.get(section), dict) and key in config[section]:
            found.append(f"{old} is now {new}")
    if found:
        raise ConfigError("renamed config key(s): " + "; ".join(found) + ". Rename them in "
                          "your config file (or --config); the values mean the same")


def check_config(config: Mapping, schema: dict) -> None:
    """A ConfigError with one line per mistake in `config`, and where the keys are documented."""
    problems = config_problems(config, schema)
    if problems:
        raise ConfigError("\n".join([*problems, WHERE_TO_LOOK]))


def config_problems(value, schema: dict, path: str = "") -> list[str]:
    """One line per way `value` (at dotted `path`, "" for the whole config) breaks `schema`."""
    expected = schema.get("type")
    if expected and not _has_type(value, expected):
        return [f"{_label(path)}: must be {_TYPES[expected][1]}, got {_shown(value)}"
                + _type_hint(value, schema, path)]
    problems = [f"{_label(path)}: {problem}" for problem in _value_problems(value, schema)]
    if isinstance(value, Mapping):
        problems += _mapping_problems(value, schema, path)
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems += config_problems(item, schema["items"], f"{path}[{index}]")
    return problems


def type_command_line_values(config: dict, given: Mapping, schema: dict) -> None:
    """Turn text that `--config` gave (`given`) into the number, boolean or list of them that
    the schema wants at that key, in `config` (where it was merged), in place.

    `--config segment='{images_per_chunk: 1}'` reaches the workflow as {"images_per_chunk": "1"}.
    Text that is not such a value stays as it is, for `config_problems` to name.
    """
    for key, value in given.items():
        sub = _property_schema(schema, key)
        if sub is None or not isinstance(config, dict) or key not in config:
            continue
        if isinstance(value, Mapping) and isinstance(config[key], dict):
            type_command_line_values(config[key], value, sub)
        else:
            config[key] = _typed(config[key], sub)


def _typed(value, schema: dict):
    """`value`, or the boolean, number or list of them that its text spells for `schema`."""
    expected = schema.get("type")
    if isinstance(value, list) and expected == "array" and "items" in schema:
        return [_typed(item, schema["items"]) for item in value]
    if not isinstance(value, str):
        return value
    text = value.strip()
    if expected == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if expected in ("integer", "number") and re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    if expected == "number" and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
        return float(text)
    return value


def _has_type(value, expected: str) -> bool:
    if isinstance(value, bool):  # a bool is an int in Python, not in the schema
        return expected == "boolean"
    return isinstance(value, _TYPES[expected][0])


def _value_problems(value, schema: dict) -> list[str]:
    """What is wrong with a value of the right type: enum, limits, pattern, length."""
    problems = []
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(_shown(option) for option in schema["enum"])
        close = _closest(value, [o for o in schema["enum"] if isinstance(o, str)])
        problems.append(f"must be one of {allowed}; got {_shown(value)}{close}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        problems += _number_problems(value, schema)
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"must match the pattern {schema['pattern']}, got {_shown(value)}")
        if len(value) < schema.get("minLength", 0):
            problems.append("must not be empty")
    if isinstance(value, list):
        problems += _list_problems(value, schema)
    return problems


def _number_problems(value: float, schema: dict) -> list[str]:
    problems = []
    for word, relation, within in (("minimum", "at least", lambda v, x: v >= x),
                                   ("maximum", "at most", lambda v, x: v <= x),
                                   ("exclusiveMinimum", "more than", lambda v, x: v > x)):
        if word in schema and not within(value, schema[word]):
            problems.append(f"must be {relation} {schema[word]}, got {_shown(value)}")
    if "multipleOf" in schema and value % schema["multipleOf"]:
        problems.append(f"must be a multiple of {schema['multipleOf']}, got {_shown(value)}")
    return problems


def _list_problems(value: list, schema: dict) -> list[str]:
    problems = []
    low, high = schema.get("minItems", 0), schema.get("maxItems")
    if len(value) < low or (high is not None and len(value) > high):
        count = f"{low}" if low == high else f"{low} to {high}" if high else f"at least {low}"
        problems.append(f"must hold {count} items, got {len(value)}")
    if schema.get("uniqueItems") and len({repr(item) for item in value}) < len(value):
        problems.append(f"must not repeat an item, got {_shown(value)}")
    return problems


def _mapping_problems(value: Mapping, schema: dict, path: str) -> list[str]:
    """Unknown keys (with the allowed ones and the closest), bad names, and each value's."""
    problems = []
    known = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    names = schema.get("propertyNames", {}).get("pattern")
    for key, item in value.items():
        dotted = f"{path}.{key}" if path else str(key)
        if key in known:
            problems += config_problems(item, known[key], dotted)
        elif extra is False:
            problems.append(_unknown_key(str(key), list(known), path))
        elif names and not re.search(names, str(key)):
            problems.append(f"{dotted}: the name {key!r} must match the pattern {names}")
        elif isinstance(extra, dict):
            problems += config_problems(item, extra, dotted)
    return problems


def _unknown_key(key: str, known: list[str], path: str) -> str:
    where = f"{path}." if path else ""
    close = difflib.get_close_matches(key, known, n=1)
    guess = f"; did you mean {where}{close[0]}?" if close else ""
    kind, keys = ("key", f"{path}'s keys") if path else ("top-level key", "the sections")
    return f"{where}{key}: unknown {kind}{guess} ({keys}: {', '.join(known)})"


def _closest(value, options: list[str]) -> str:
    close = difflib.get_close_matches(str(value), options, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _type_hint(value, schema: dict, path: str) -> str:
    """How to write what was meant, where a usual slip explains the wrong type."""
    if schema.get("type") == "object" and isinstance(value, str):
        section, _, rest = path.partition(".")
        inner = "{key: value}"
        for part in reversed(rest.split(".") if rest else []):
            inner = f"{{{part}: {inner}}}"
        return (f"; on the command line write --config {section or 'section'}='{inner}' "
                "(or use a --configfile)")
    if "enum" in schema and _shown(value) in [str(option) for option in schema["enum"]]:
        return f"; quote it in YAML: '{_shown(value)}'"
    return ""


def _property_schema(schema: dict, key: str) -> dict | None:
    if key in schema.get("properties", {}):
        return schema["properties"][key]
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def _label(path: str) -> str:
    return path or "the config"


def _shown(value) -> str:
    """A value as the user wrote it in YAML, short."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
