"""Delivery: how people reach the observatory — the HTTP API and the browser front end.

``delivery.api`` is a FastAPI application (``create_app``) that turns the analysis layer into
JSON under ``/api/v1`` and serves the static French interface of ``delivery.web`` at ``/``.
Nothing below this room imports it.
"""
