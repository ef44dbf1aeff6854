"""The Chalice application: HTTP API, authorizer and worker functions.

Routes are declared in chalicelib/api/routes/ (one module per area) and added
here from the route table, so every route carries its role declaration.
"""

from __future__ import annotations

from typing import Any

from chalice import Chalice
from chalice.app import AuthRequest, AuthResponse, SQSEvent

from chalicelib.api import auth, middleware, registry
from chalicelib.api import routes as _routes  # noqa: F401  (declares every route)
from chalicelib.settings import settings
from chalicelib.workers import jobs

app = Chalice(app_name="loyalty")
app.api.binary_types = []


@app.authorizer(ttl_seconds=0)
def api_key(auth_request: AuthRequest) -> AuthResponse:
    return auth.authorize(auth_request)


registry.register(app, api_key)
middleware.install(app)


@app.on_sqs_message(queue=settings.jobs_queue, batch_size=10, name="jobs_worker")
def jobs_worker(event: SQSEvent) -> dict[str, Any]:
    return jobs.handle_records(record.to_dict() for record in event)
