"""The head's HTTP service: the jobs REST API now; state, metrics and the web UI later.

One aiohttp application (``server.py``) with the cross-cutting rules in middlewares
(authentication and the caller's role, JSON errors, body limits, cross-site refusal), and
one module per group of routes under ``routes/``, each declaring its routes with
``routing.Route`` so the OpenAPI document and request validation come from one place.
"""
