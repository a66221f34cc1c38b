"""The OpenAPI document of the service, derived from the route declarations."""

from __future__ import annotations

import re
from typing import Any

from manta._private.common.version import __version__
from manta.dashboard.routing import Route

OPENAPI_PATH = "/api/openapi.json"

_ERROR = {
    "description": "error",
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
        }
    },
}


def _operation(route: Route) -> dict[str, Any]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    responses: dict[str, Any] = {str(code): {"description": text} for code, text in route.responses.items()}
    for code, text in ((400, "bad input"), (401, "no or wrong token"), (403, "role too weak")):
        responses.setdefault(str(code), {**_ERROR, "description": text})
    op: dict[str, Any] = {
        "summary": route.summary,
        "operationId": route.handler.__name__,
        "parameters": params,
        "responses": responses,
        "x-manta-role": route.role,
    }
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {f.name: f.schema() for f in route.body},
                        "required": [f.name for f in route.body if f.required],
                        "additionalProperties": False,
                    }
                }
            },
        }
    elif route.upload_limit is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    return op


def document(routes: list[Route]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if route.websocket:
            continue  # OpenAPI 3.0 cannot describe a websocket (the log tail; see routes/jobs.py)
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.0.3",
        "info": {"title": "Manta head HTTP API", "version": __version__},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }
