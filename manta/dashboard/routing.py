"""How routes are declared: method, path, the role a caller needs, and the JSON body's
fields. Request validation and the OpenAPI document are both derived from these
declarations, so what the server checks and what it documents cannot drift apart."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Records an event in the head's audit log: (event, **fields).
Audit = Callable[..., None]

# Largest JSON body a route accepts (uploads declare their own limit).
MAX_JSON_BYTES = 1 << 20

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


@dataclass(frozen=True, slots=True)
class Field:
    """One member of a JSON request body. ``type`` is a JSON-schema type name; ``items``
    or ``values`` give the element type of an array or the value type of an object."""

    name: str
    type: str
    doc: str
    required: bool = False
    nullable: bool = True
    items: str | None = None
    values: str | None = None
    minimum: float | None = None

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "description": self.doc}
        if self.items:
            out["items"] = {"type": self.items}
        if self.values:
            out["additionalProperties"] = {"type": self.values}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.nullable and not self.required:
            out["nullable"] = True
        return out


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    role: str = "read"  # the least role a caller needs (rpc.auth.USER_ROLES)
    body: tuple[Field, ...] | None = None
    # Responses besides 401/403 (added to every route): status -> description.
    responses: dict[int, str] = field(default_factory=lambda: {200: "OK"})
    # A raw upload (application/octet-stream) instead of JSON, with its own size limit.
    upload_limit: int | None = None
    websocket: bool = False


class RequestError(web.HTTPBadRequest):
    """Bad input: answered 400 with this message as the JSON error."""

    def __init__(self, message: str) -> None:
        super().__init__(text=json.dumps({"error": message}), content_type="application/json")
        self.message = message


def _matches(value: Any, type_name: str) -> bool:
    kinds = _JSON_TYPES[type_name]
    # bool is an int in Python but not in JSON.
    return isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)


def validate_body(body: Any, fields: tuple[Field, ...]) -> dict[str, Any]:
    """Check a decoded JSON body against its fields; unknown or ill-typed members are a
    ``RequestError`` that names them and lists what is accepted."""
    if not isinstance(body, dict):
        raise RequestError(f"the request body must be a JSON object, got {type(body).__name__}")
    known = {f.name: f for f in fields}
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise RequestError(f"unknown field(s) {unknown}; valid fields are {sorted(known)}")
    out: dict[str, Any] = {}
    for f in fields:
        value = body.get(f.name)
        if value is None:
            if f.required:
                raise RequestError(f"missing required field {f.name!r} ({f.doc})")
            out[f.name] = None
            continue
        if not _matches(value, f.type):
            raise RequestError(f"field {f.name!r} must be of type {f.type}, got {type(value).__name__}")
        if f.items and not all(_matches(v, f.items) for v in value):
            raise RequestError(f"every element of field {f.name!r} must be of type {f.items}")
        if f.values and not all(isinstance(k, str) and _matches(v, f.values) for k, v in value.items()):
            raise RequestError(f"field {f.name!r} must map strings to values of type {f.values}")
        if f.minimum is not None and value < f.minimum:
            raise RequestError(f"field {f.name!r} must be at least {f.minimum}, got {value}")
        out[f.name] = value
    return out


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole request body, refused (413) as soon as it passes ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    chunks, size = [], 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def read_json(request: web.Request, fields: tuple[Field, ...]) -> dict[str, Any]:
    """The request's JSON body, size-limited, decoded and validated."""
    raw = await read_body(request, MAX_JSON_BYTES)
    try:
        # NaN and Infinity are not JSON; Python's parser accepts them unless told.
        body = json.loads(raw or b"{}", parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise RequestError(f"the request body is not valid JSON: {e}") from None
    return validate_body(body, fields)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def caller(request: web.Request) -> dict[str, str]:
    """Who made a request, as the audit log records it (set by the auth middleware)."""
    return {"by": request["token_name"], "role": request["role"], "peer": request.remote or "unknown"}


def int_query(request: web.Request, name: str, default: int, lowest: int, highest: int) -> int:
    """An integer query parameter; RequestError saying what was wrong otherwise."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RequestError(f"query parameter {name!r} must be an integer, got {raw[:40]!r}") from None
    if not lowest <= value <= highest:
        raise RequestError(f"query parameter {name!r} must be between {lowest} and {highest}, got {value}")
    return value
