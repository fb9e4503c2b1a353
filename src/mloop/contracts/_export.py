"""A contract as a standard document: JSON Schema (draft 2020-12) or a Frictionless Table Schema.

Data owners validate against these with their own tools before sending anything. The
standard keywords carry what mloop *rejects* (types, nullability, required columns, and
ranges or categories when the contract's policy for them is ``reject``); expectations
mloop only *flags* travel as ``x-mloop-*`` annotations, which standard validators ignore
and :func:`schema_from_document` reads back. So a record passes a standard validator
exactly when mloop would accept it; ``strict=True`` exports the flagged expectations as
hard constraints too (the same as exporting ``schema.with_policy("reject", "reject")``).
Two known edges, both where the standard is stricter: Frictionless reads ``30.0`` in an
integer column as an error (mloop accepts whole numbers written as floats), and the
datetime pattern admits ISO 8601 only (mloop also parses a few other spellings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

from mloop.contracts._column import KINDS, POLICIES, Column, Kind, Policy
from mloop.contracts._schema import Schema
from mloop.errors import InvalidInput

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "ExportFormat",
    "export_contract",
    "schema_from_document",
    "to_frictionless",
    "to_json_schema",
]

ExportFormat = Literal["json-schema", "frictionless"]
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
TABLE_SCHEMA_PROFILE = "https://datapackage.org/profiles/2.0/tableschema.json"

_KIND = "x-mloop-kind"
_FLAGGED = "x-mloop-flagged"
_POLICIES = "x-mloop-policies"

# ISO 8601 date or date-time, the text mloop documents for datetime columns.
ISO_DATETIME = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$"
_JSON_TYPES: dict[Kind, str] = {
    "float": "number",
    "integer": "integer",
    "boolean": "boolean",
    "string": "string",
    "datetime": "string",
}
_TABLE_TYPES: dict[Kind, str] = {
    "float": "number",
    "integer": "integer",
    "boolean": "boolean",
    "string": "string",
    "datetime": "datetime",
}
_KIND_OF_JSON = {"number": "float", "integer": "integer", "boolean": "boolean", "string": "string"}
_KIND_OF_TABLE = {v: k for k, v in _TABLE_TYPES.items()}


def export_contract(
    schema: Schema, fmt: ExportFormat, *, title: str, strict: bool = False
) -> dict[str, Any]:
    """The contract in ``fmt`` ("json-schema" or "frictionless")."""
    if fmt == "json-schema":
        return to_json_schema(schema, title=title, strict=strict)
    if fmt == "frictionless":
        return to_frictionless(schema, title=title, strict=strict)
    raise InvalidInput(f"Export format {fmt!r} is not one of 'json-schema', 'frictionless'.")


# --- JSON Schema -----------------------------------------------------------------------


def to_json_schema(schema: Schema, *, title: str = "", strict: bool = False) -> dict[str, Any]:
    """A draft 2020-12 JSON Schema for one record (an object) of ``schema``'s input."""
    if strict:
        schema = schema.with_policy(on_unknown_category="reject", on_out_of_range="reject")
    doc: dict[str, Any] = {"$schema": JSON_SCHEMA_DIALECT}
    if title:
        doc["title"] = title
    doc.update(
        {
            "description": "One input record. Fields not listed are accepted and ignored.",
            "type": "object",
            "properties": {c.name: _json_property(c, schema) for c in schema.columns},
            "required": list(schema.names),
            _POLICIES: _policies(schema),
        }
    )
    return doc


def _json_property(col: Column, schema: Schema) -> dict[str, Any]:
    base = _JSON_TYPES[col.kind]
    prop: dict[str, Any] = {"description": _describe(col), _KIND: col.kind}
    hard, flagged = _split_expectations(col, schema)
    if col.kind == "boolean":
        # mloop takes 0 and 1 for flags too (JSON clients often send them).
        options: list[dict[str, Any]] = [{"type": "boolean"}, {"enum": [0, 1]}]
        if col.nullable:
            options.append({"type": "null"})
        prop["anyOf"] = options
    else:
        prop["type"] = [base, "null"] if col.nullable else base
    if col.kind == "datetime":
        prop["pattern"] = ISO_DATETIME  # applies to strings only; null passes
    if "min" in hard:
        prop["minimum"] = hard["min"]
    if "max" in hard:
        prop["maximum"] = hard["max"]
    if "categories" in hard:
        prop["enum"] = [*hard["categories"], *([None] if col.nullable else [])]
    if flagged:
        prop[_FLAGGED] = _flag_keywords(flagged)
    return prop


# --- Frictionless Table Schema ----------------------------------------------------------


def to_frictionless(schema: Schema, *, title: str = "", strict: bool = False) -> dict[str, Any]:
    """A Frictionless Table Schema (Data Package v2) for a table of ``schema``'s input."""
    if strict:
        schema = schema.with_policy(on_unknown_category="reject", on_out_of_range="reject")
    doc: dict[str, Any] = {"$schema": TABLE_SCHEMA_PROFILE}
    if title:
        doc["title"] = title
    doc.update(
        {
            "description": "Input table. Columns not listed are accepted and ignored.",
            "fields": [_table_field(c, schema) for c in schema.columns],
            # Every listed field must be present; more may be (mloop ignores them).
            "fieldsMatch": "subset",
            "missingValues": [""],
            _POLICIES: _policies(schema),
        }
    )
    return doc


def _table_field(col: Column, schema: Schema) -> dict[str, Any]:
    field: dict[str, Any] = {
        "name": col.name,
        "type": _TABLE_TYPES[col.kind],
        "description": _describe(col),
        _KIND: col.kind,
    }
    if col.kind == "datetime":
        field["format"] = "any"
    if col.kind == "boolean":
        field["trueValues"] = ["true", "True", "TRUE", "1"]
        field["falseValues"] = ["false", "False", "FALSE", "0"]
    hard, flagged = _split_expectations(col, schema)
    constraints: dict[str, Any] = {"required": not col.nullable}
    if "min" in hard:
        constraints["minimum"] = hard["min"]
    if "max" in hard:
        constraints["maximum"] = hard["max"]
    if "categories" in hard:
        constraints["enum"] = list(hard["categories"])
    field["constraints"] = constraints
    if flagged:
        field[_FLAGGED] = _flag_keywords(flagged)
    return field


# --- shared pieces ---------------------------------------------------------------------


def _split_expectations(col: Column, schema: Schema) -> tuple[dict[str, Any], dict[str, Any]]:
    """The column's range and categories, split into (rejected, flagged) by the policies."""
    ranged: dict[str, Any] = {}
    if col.min is not None:
        ranged["min"] = _number(col.min, col.kind)
    if col.max is not None:
        ranged["max"] = _number(col.max, col.kind)
    cats: dict[str, Any] = {} if col.categories is None else {"categories": list(col.categories)}
    hard: dict[str, Any] = {}
    flagged: dict[str, Any] = {}
    (hard if schema.on_out_of_range == "reject" else flagged).update(ranged)
    (hard if schema.on_unknown_category == "reject" else flagged).update(cats)
    return hard, flagged


def _flag_keywords(flagged: Mapping[str, Any]) -> dict[str, Any]:
    names = {"min": "minimum", "max": "maximum", "categories": "enum"}
    return {names[k]: v for k, v in flagged.items()}


def _policies(schema: Schema) -> dict[str, str]:
    return {
        "on_unknown_category": schema.on_unknown_category,
        "on_out_of_range": schema.on_out_of_range,
    }


def _number(x: float, kind: Kind) -> float | int:
    return int(x) if kind == "integer" and float(x).is_integer() else x


def _describe(col: Column) -> str:
    text = col.expects
    if col.min is not None or col.max is not None:
        text = col.describe_range()
    elif col.categories is not None:
        text = f"{col.expects}, {col.describe_categories()}"
    return f"{text[0].upper()}{text[1:]}{'; may be null' if col.nullable else ''}."


# --- reading a document back -----------------------------------------------------------


def schema_from_document(doc: Mapping[str, Any]) -> Schema:
    """The :class:`Schema` an exported JSON Schema or Table Schema describes.

    Reads the standard keywords (so a hand-edited document means what it says) plus
    mloop's ``x-mloop-*`` annotations for the kind of each column and what is only
    flagged. A document without annotations rejects whatever its constraints exclude.
    """
    if not isinstance(doc, Mapping):
        raise InvalidInput("A contract document is a JSON object; got something else.")
    policies = doc.get(_POLICIES) or {}
    out_of_range = _policy(policies.get("on_out_of_range", "reject"))
    unknown_category = _policy(policies.get("on_unknown_category", "reject"))
    if isinstance(doc.get("fields"), list):
        columns = tuple(_column_from_field(f) for f in doc["fields"])
    elif isinstance(doc.get("properties"), Mapping):
        required = set(doc.get("required") or ())
        columns = tuple(
            _column_from_property(str(name), prop, required)
            for name, prop in doc["properties"].items()
        )
    else:
        raise InvalidInput(
            "This is neither a JSON Schema with 'properties' nor a Table Schema with 'fields'; "
            "export one with: mloop contract export NAME@ALIAS --format json-schema -o contract.json"
        )
    return Schema(columns, on_unknown_category=unknown_category, on_out_of_range=out_of_range)


def _policy(value: Any) -> Policy:
    if value not in POLICIES:
        raise InvalidInput(f"Policy {value!r} in the contract is not one of {POLICIES}.")
    return cast(Policy, value)


def _column_from_property(name: str, prop: Mapping[str, Any], required: set[str]) -> Column:
    if name not in required:
        raise InvalidInput(
            f"Property {name!r} is not listed in 'required'; mloop contracts need every column. "
            "Add it to 'required' (allow missing values with type [..., 'null'])."
        )
    types = _json_types(prop)
    nullable = "null" in types
    named = [t for t in types if t != "null"]
    kind = prop.get(_KIND) or (_KIND_OF_JSON.get(named[0]) if len(named) == 1 else None)
    if "pattern" in prop and prop.get(_KIND) is None and kind == "string":
        kind = "datetime"
    enum = prop.get("enum")
    return _column(name, kind, nullable, prop, enum, prop.get(_FLAGGED) or {})


def _json_types(prop: Mapping[str, Any]) -> list[str]:
    declared = prop.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [str(t) for t in declared]
    types: list[str] = []
    for option in prop.get("anyOf") or ():
        if isinstance(option, Mapping):
            types.extend(_json_types(option))
    return types


def _column_from_field(field: Mapping[str, Any]) -> Column:
    name = str(field.get("name", ""))
    constraints = field.get("constraints") or {}
    kind = field.get(_KIND) or _KIND_OF_TABLE.get(str(field.get("type", "string")))
    return _column(
        name,
        kind,
        not bool(constraints.get("required", False)),
        constraints,
        constraints.get("enum"),
        field.get(_FLAGGED) or {},
    )


def _column(
    name: str,
    kind: Any,
    nullable: bool,
    hard: Mapping[str, Any],
    enum: Any,
    flagged: Mapping[str, Any],
) -> Column:
    if kind not in KINDS:
        raise InvalidInput(
            f"Column {name!r} has a type mloop contracts do not know ({kind!r}); "
            f"use one of number, integer, boolean, string or datetime."
        )
    low = hard.get("minimum", flagged.get("minimum"))
    high = hard.get("maximum", flagged.get("maximum"))
    cats = enum if enum is not None else flagged.get("enum")
    categories = None if cats is None else tuple(str(c) for c in cats if c is not None)
    return Column(
        name,
        cast(Kind, kind),
        nullable,
        None if low is None else float(low),
        None if high is None else float(high),
        categories=categories if kind == "string" else None,
    )
