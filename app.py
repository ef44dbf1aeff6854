"""The Chalice application: HTTP API, authorizer and worker functions.

Routes are declared in chalicelib/api/routes/ (one module per area) and added
here from the route table, so every route carries its role declaration.

Importing this module is what every function of the app pays on a cold start
(bench/cold_start.py), so it imports only the route table: the authorizer,
the workers and the schedules import what they use on their first call.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

from chalice.app import AuthRequest, AuthResponse, Chalice, CloudWatchEvent, Cron, SQSEvent

from chalicelib import clock
from chalicelib.api import middleware, registry
from chalicelib.api import routes as _routes  # noqa: F401  (declares every route)
from chalicelib.console import pages
from chalicelib.console import routes as _pages  # noqa: F401  (declares every page)
from chalicelib.settings import settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

app = Chalice(app_name="loyalty")
app.api.binary_types = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/*", "multipart/form-data"]
"""Binary bodies: the image library's images (routes/assets.py) out, and a console upload form's file in (API
Gateway would otherwise pass a multipart body as text and mangle the image); every other body is JSON or text.
`image/*` lets API Gateway match a browser's or mail client's `Accept: image/avif,image/webp,...` (it decodes a
binary answer only for a matching Accept); Chalice itself matches the exact types."""
app.api.binary_types.append("application/vnd.apple.pkpass")  # wallet passes (api/routes/passes.py)


@app.authorizer(ttl_seconds=0, name="key_authorizer")
def api_key(auth_request: AuthRequest) -> AuthResponse:
    from chalicelib.api import auth

    return auth.authorize(auth_request)


registry.register(app, api_key)
pages.register(app)
middleware.install(app)


@app.on_sqs_message(queue=settings.jobs_queue, batch_size=1, name="jobs_worker")
def jobs_worker(event: SQSEvent) -> PartialItemFailureResponse:
    """One job per invocation: each job spends up to its own time budget (~10 s), well inside the 60 s timeout."""
    from chalicelib.workers import jobs

    return jobs.handle_records(record.to_dict() for record in event)


@app.on_sqs_message(queue=settings.mail_queue, batch_size=10, name="mail_worker")
def mail_worker(event: SQSEvent) -> PartialItemFailureResponse:
    """Up to 10 recipients per invocation; only transiently failed ones are redelivered."""
    from chalicelib.workers import mail

    return mail.handle_records(record.to_dict() for record in event)


@app.on_sqs_message(queue=settings.reports_queue, batch_size=1, name="reports_worker")
def reports_worker(event: SQSEvent) -> PartialItemFailureResponse:
    """One report per invocation, up to the 900 s timeout; a build failure is recorded on the report."""
    from chalicelib.workers import reports

    return reports.handle_records(record.to_dict() for record in event)


@app.on_sqs_message(queue=settings.webhooks_queue, batch_size=5, name="webhooks_worker")
def webhooks_worker(event: SQSEvent) -> PartialItemFailureResponse:
    """Up to 5 delivery attempts (5 s timeout each) per invocation; a failed attempt re-queues itself with backoff."""
    from chalicelib.workers import webhooks

    return webhooks.handle_records(record.to_dict() for record in event)


@app.on_sqs_message(queue=settings.wallet_queue, batch_size=5, name="wallet_worker")
def wallet_worker(event: SQSEvent) -> PartialItemFailureResponse:
    """Up to 5 pass updates per invocation (5 s per push or PATCH); a failed push re-queues the update with backoff."""
    from chalicelib.workers import wallet

    return wallet.handle_records(record.to_dict() for record in event)


@app.schedule(Cron(0, 2, "*", "*", "?", "*"), name="daily_sweep")
def daily_sweep(event: CloudWatchEvent) -> None:
    from chalicelib.services.program import sweeps

    sweeps.start_daily(clock.now())


@app.schedule(Cron(5, "*", "*", "*", "?", "*"), name="mail_triggers")
def mail_triggers(event: CloudWatchEvent) -> None:
    """Hourly: each program's daily trigger run starts at its local send time (tenants span time zones)."""
    from chalicelib.services.marketing import triggers

    triggers.start_due(clock.now())


@app.schedule(Cron(0, 3, "*", "*", "?", "*"), name="nightly_reconciliation")
def nightly_reconciliation(event: CloudWatchEvent) -> None:
    """Nightly, after the sweep: one reconciliation job per card scope on the jobs queue (an alarm on any mismatch)."""
    from chalicelib.services.reporting import reconciliation

    reconciliation.start_nightly(clock.now())


@app.schedule(Cron(40, "0/6", "*", "*", "?", "*"), name="wallet_google_keys")
def wallet_google_keys(event: CloudWatchEvent) -> None:
    """Every 6 hours: Google's root signing keys for wallet callbacks, fetched and stored (the old kept until they
    expire; a failed fetch keeps them all)."""
    from chalicelib.services.wallet import root_keys

    root_keys.refresh(clock.now())


# Everything imported so far lives as long as the container: moving it out of the collector's generations keeps
# the first request (which imports its service lazily) from paying a full collection over it. Measured with
# bench/cold_start.py: the first purchase of a cold container 446 -> 375-396 ms (bench/RESULTS.md, cold start).
gc.freeze()
