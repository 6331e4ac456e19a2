"""Menace's HTTP API: the service's stack over HTTP, on the port that serves ``/metrics``.

- :mod:`menace.api.models`: the typed requests and answers (the OpenAPI at ``/openapi.json``);
- :mod:`menace.api.app`: the routes (``/v1/...``, ``/healthz``, ``/metrics``) over a running stack;
- :mod:`menace.api.event_stream`: ``/v1/events`` as Server-Sent Events, resumable by id;
- :mod:`menace.api.server`: uvicorn in a thread the stack owns and stops;
- :mod:`menace.api.tokens`: the bearer token (``<data dir>/api_token``).

The client side is :mod:`menace.http_client` (``menace.client.connect``).
Importing this package loads no web framework: FastAPI and uvicorn are
imported by :mod:`menace.api.app` and :mod:`menace.api.server` only.
"""

#: The version in every route's path.
API_VERSION = "v1"
