"""A small JSON Schema validator: the subset ``report.schema.json`` uses (type, const, enum,
properties, required, additionalProperties, propertyNames, items, anyOf, minimum, $ref to
``#/$defs/...``). ``jsonschema``, where installed, is run as well (an optional test dependency).
"""

from __future__ import annotations

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_KNOWN = {"$schema", "$id", "title", "description", "type", "const", "enum", "properties", "required",
          "additionalProperties", "propertyNames", "items", "anyOf", "minimum", "$ref", "$defs"}


def errors(instance, schema: dict, root: dict | None = None, path: str = "$") -> list[str]:
    """Every way ``instance`` breaks ``schema`` ("$.checks[0].status: ..."), [] when it is valid."""
    root = root or schema
    unknown = set(schema) - _KNOWN
    if unknown:
        raise ValueError(f"{path}: the schema uses {sorted(unknown)}, which this validator does not know")
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return errors(instance, target, root, path)
    out = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](instance) for t in types):
            return [f"{path}: {instance!r} is not of type {' or '.join(types)}"]
    if "const" in schema and instance != schema["const"]:
        out.append(f"{path}: {instance!r} is not {schema['const']!r}")
    if "enum" in schema and instance not in schema["enum"]:
        out.append(f"{path}: {instance!r} is not one of {schema['enum']}")
    if "minimum" in schema and _TYPES["number"](instance) and instance < schema["minimum"]:
        out.append(f"{path}: {instance!r} < {schema['minimum']}")
    if "anyOf" in schema and all(errors(instance, s, root, path) for s in schema["anyOf"]):
        out.append(f"{path}: {instance!r} matches none of {schema['anyOf']}")
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in instance:
                out.append(f"{path}: missing {key!r}")
        for key, value in instance.items():
            if "propertyNames" in schema:
                out += errors(key, schema["propertyNames"], root, f"{path} key {key!r}")
            if key in props:
                out += errors(value, props[key], root, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                out.append(f"{path}: unexpected key {key!r}")
            elif isinstance(schema.get("additionalProperties"), dict):
                out += errors(value, schema["additionalProperties"], root, f"{path}.{key}")
    if isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            out += errors(item, schema["items"], root, f"{path}[{i}]")
    return out


def assert_valid(instance, schema: dict) -> None:
    found = errors(instance, schema)
    assert not found, "the report breaks its schema:\n" + "\n".join(found[:20])
    try:
        import jsonschema
    except ImportError:
        return
    jsonschema.validate(instance, schema)
