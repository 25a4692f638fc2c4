"""The HTTP API reference, from the app's own OpenAPI document: every route with its
parameters, request body and responses, each request model and response model, and the
examples a real server answered (``eval/docsite/examples.py`` records them)."""

from __future__ import annotations

import http
import inspect
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from eval.docsite.markdown import code, fenced, table

Schema = Mapping[str, Any]
REF = "#/components/schemas/"
METHODS = ("get", "post", "put", "patch", "delete")
CUT = 300  # characters of a long string an example shows


def route_anchor(method: str, path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-")


def schema_anchor(name: str) -> str:
    return "schema-" + name.lower()


def inline(name: str) -> bool:
    """FastAPI's generated form bodies (Body_...) are shown where they are used."""
    return name.startswith("Body_")


def type_of(schema: Schema) -> str:
    """A JSON schema in words, with links to the models it names."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(REF)
        return f"[{name}](#{schema_anchor(name)})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            kinds = [type_of(s) for s in schema[key] if s.get("type") != "null"]
            nullable = len(kinds) < len(schema[key])
            return " or ".join(kinds) + (" or null" if nullable else "")
    if "enum" in schema:
        return "one of " + ", ".join(code(json.dumps(v)) for v in schema["enum"])
    if "const" in schema:
        return code(json.dumps(schema["const"]))
    kind = schema.get("type", "any")
    if kind == "array":
        return "list of " + type_of(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "map of text to " + type_of(schema["additionalProperties"])
    if kind == "string" and ("contentMediaType" in schema or schema.get("format") == "binary"):
        return "file"
    return {"string": "text", "integer": "integer", "number": "number", "boolean": "boolean",
            "object": "object", "null": "null"}.get(str(kind), str(kind))


def limits(schema: Schema) -> str:
    """minimum, maximum, lengths and patterns, also inside a nullable anyOf."""
    words = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<",
             "minLength": "length ≥", "maxLength": "length ≤", "pattern": "matches"}
    parts = []
    for option in [schema, *schema.get("anyOf", [])]:
        for key, word in words.items():
            if key in option:
                value = option[key]
                value = int(value) if isinstance(value, float) and value.is_integer() else value
                parts.append(f"{word} {code(value) if key == 'pattern' else value}")
    return ", ".join(parts)


def fields_table(schema: Schema) -> str:
    required = set(schema.get("required", []))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        default = code(json.dumps(prop["default"])) if "default" in prop else ""
        what = " ".join(p for p in (prop.get("description", ""), limits(prop)) if p)
        rows.append((code(name), type_of(prop), "yes" if name in required else "",
                     default, what))
    if not rows:
        return "No fields."
    return table(["Field", "Type", "Required", "Default", "Description"], rows)


def _body(op: Schema, schemas: Mapping[str, Schema]) -> list[str]:
    out = []
    for media, content in op.get("requestBody", {}).get("content", {}).items():
        schema = content.get("schema", {})
        name = schema.get("$ref", "").removeprefix(REF)
        if name and inline(name):
            out += [f"**Request body** ({code(media)}):", fields_table(schemas[name])]
        else:
            out.append(f"**Request body** ({code(media)}): {type_of(schema)}")
    return out


def _parameters(op: Schema) -> list[str]:
    rows = [(code(p["name"]), p["in"], type_of(p.get("schema", {})),
             "yes" if p.get("required") else "",
             " ".join(x for x in (p.get("description") or p.get("schema", {}).get(
                 "description", ""), limits(p.get("schema", {}))) if x))
            for p in op.get("parameters", [])]
    return [table(["Parameter", "In", "Type", "Required", "Description"], rows)] if rows else []


def _standard(status: str, description: str) -> bool:
    try:
        return description in (http.HTTPStatus(int(status)).phrase, "Successful Response")
    except ValueError:
        return False


def _responses(op: Schema) -> list[str]:
    """One row per status, except error statuses that share a body and say nothing more."""
    rows: list[tuple[str, str, str]] = []
    shared: dict[str, list[str]] = {}
    for status, response in op.get("responses", {}).items():
        content = response.get("content", {})
        body = "; ".join(f"{type_of(c['schema'])}" if c.get("schema") else code(media)
                         for media, c in content.items()) or "empty"
        description = response.get("description", "")
        if status.isdigit() and int(status) >= 400 and _standard(status, description):
            shared.setdefault(body, []).append(status)
        else:
            rows.append((status, body, description))
    for body, statuses in shared.items():
        rows.append((", ".join(statuses), body, "an error; `detail` says what to change"))
    return [table(["Status", "Body", "When"], rows)]


def _shown(value: Any) -> Any:
    """An example's JSON with long strings cut, so a whole document's text stays readable."""
    if isinstance(value, str) and len(value) > CUT:
        return value[:CUT] + f"… ({len(value):,} characters in all)"
    if isinstance(value, list):
        return [_shown(v) for v in value]
    if isinstance(value, dict):
        return {k: _shown(v) for k, v in value.items()}
    return value


def example_block(example: Mapping[str, Any]) -> str:
    """A collapsible block: the curl command and what the server answered."""
    response = example["response"]
    body = response.get("json")
    shown = json.dumps(_shown(body), indent=2, ensure_ascii=False) if body is not None \
        else "\n".join(_shown(line) for line in response.get("text", "").splitlines())
    inner = [fenced(example["curl"], "sh"),
             f"{response['status']} {http.HTTPStatus(response['status']).phrase}"
             + (f", {code(response['content_type'])}" if response.get("content_type") else ""),
             fenced(shown, "json" if body is not None else "text")]
    indented = "\n\n".join(inner).replace("\n", "\n    ")
    return f'??? example "{example["title"]}"\n\n    {indented}'


def _first_sentence(op: Schema) -> str:
    text = " ".join(str(op.get("description") or op.get("summary", "")).split())
    return re.split(r"(?<=[.;:])\s", text, maxsplit=1)[0].rstrip(".;:")


def operations(spec: Schema) -> Iterable[tuple[str, str, Schema]]:
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def render(spec: Schema, examples: Iterable[Mapping[str, Any]]) -> str:
    schemas = spec.get("components", {}).get("schemas", {})
    by_route: dict[str, list[Mapping[str, Any]]] = {}
    for example in examples:
        by_route.setdefault(example["route"], []).append(example)
    out = ["## Routes", table(["Route", "What it does"], [
        (f"[{code(f'{m.upper()} {p}')}](#{route_anchor(m, p)})", _first_sentence(op))
        for m, p, op in operations(spec)])]
    for method, path, op in operations(spec):
        route = f"{method.upper()} {path}"
        out.append(f"### {code(route)} {{#{route_anchor(method, path)}}}")
        out.append(op.get("description") or op.get("summary", ""))
        out += _parameters(op) + _body(op, schemas) + _responses(op)
        out += [example_block(e) for e in by_route.get(route, [])]
    out.append("## Models")
    for name, schema in sorted(schemas.items()):
        if inline(name):
            continue
        out.append(f"### {name} {{#{schema_anchor(name)}}}")
        if schema.get("description"):
            out.append(schema["description"])
        if "enum" in schema:
            out.append(type_of(schema))
        else:
            out.append(fields_table(schema))
    return "\n\n".join(out)


def other_routes(app: Any) -> list[tuple[str, str, str]]:
    """Routes and mounts that OpenAPI leaves out (the page, the docs, /mcp, /metrics):
    (path, methods, the function or app serving it)."""
    from fastapi.routing import APIRoute
    from starlette.routing import Mount, Route

    found = []
    documented = set(app.openapi().get("paths", {}))
    for route in app.routes:
        if isinstance(route, (APIRoute, Route)) and route.path not in documented:
            endpoint = route.endpoint
            owner = endpoint if inspect.isfunction(endpoint) or inspect.ismethod(endpoint) \
                else type(endpoint)
            found.append((route.path, ", ".join(sorted(route.methods or {"any"})),
                          f"{owner.__module__}.{owner.__qualname__}"))
        elif isinstance(route, Mount):
            found.append((route.path + "/…", "GET", "static files"))
    return found


def render_other(app: Any) -> str:
    return table(["Path", "Methods", "Served by"],
                 [(code(p), m, code(w) if w != "static files" else w)
                  for p, m, w in other_routes(app)])
