"""Operator command line: `python -m chalicelib.cli {apply,validate,platform-key,sweep,...}`.

  apply FILE|DIR ... [--keys-out PATH]   validate every file, then apply them (idempotent)
  validate FILE|DIR ...                  validate only; needs no AWS at all
  platform-key [--name NAME]             mint the platform key unless an active one exists
  first-admin EMAIL                      create the first platform admin (password and MFA secret shown once)
  sweep                                  run today's daily sweep (expiry, tier reviews) here, to the end
  triggers                               run today's trigger messages of every program that has any on
  usage-keys                             (re)register every tenant's and agency's request-limit usage key
  reconcile [--scope S ...]              check every card's balance against its ledger (all owners by default)
  import-customers FILE --api URL --key KEY [--program P]
                                         import a customer CSV through the HTTP API, with a progress bar

Target. The commands that use AWS (apply, platform-key, first-admin, sweep, triggers,
usage-keys, reconcile) act on the running local stack (`make run`, found
through `.local/stack.json`) or, with `--stage dev|prod`, on that deployed
stage; with neither they refuse (exit 2) rather than guess. They print the
target on stderr before touching it (chalicelib/cli_target.py).

New keys are shown exactly once (printed, or appended to --keys-out as JSON).
Exit status: 0 done, 1 invalid file or failed command (or import), 2 bad usage
or no target, 3 import done with rejected rows. A failure is one line on
stderr (`--traceback` shows the traceback). Storage modules are imported only
by the commands that use AWS, after the target is set, so `validate` runs in
CI without credentials or endpoints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chalicelib.cli_target import Target, TargetError, resolve
from chalicelib.schemas.keys import KeyCreated
from chalicelib.schemas.tenancy import TenantFile
from chalicelib.services.tenancy.platform import ensure_platform_key
from chalicelib.services.tenancy.tenant_files import (
    ApplyReport,
    TenantApplyInterrupted,
    TenantFileError,
    apply_tenant_file,
    check_files,
    load_tenant_file,
)

__all__ = ["Target", "apply_tenant_file", "ensure_platform_key", "main"]


def _connect(args: argparse.Namespace) -> None:
    """Choose, set and announce the command's target, before the first import that reads settings."""
    target: Target | None = args.target
    if target is None:
        if "chalicelib.settings" in sys.modules:
            raise TargetError("settings are already loaded in this process, so the CLI cannot choose its target; "
                              "in-process callers pass main(..., target=Target.as_configured())")
        target = resolve(args.stage)
        target.activate()
    print(f"{args.command}: acting on {target.description}", file=sys.stderr, flush=True)


def _one_line(err: BaseException) -> str:
    """An error and its causes on one line. PynamoDB's message says what failed ("Failed to get item"), its
    cause why ("Unable to locate credentials"); botocore's messages name the operation and the AWS error code."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = " ".join(str(current).split())
        if text and not any(text in part for part in parts):
            parts.append(text)
        current = getattr(current, "cause", None) or current.__cause__
    message = ": ".join(parts) or type(err).__name__
    ours = type(err).__module__.split(".")[0] in ("botocore", "boto3", "pynamodb")
    return message if ours else f"{type(err).__name__}: {message}"


def _expand(paths: Sequence[str]) -> list[Path]:
    """Files as given; a directory stands for its *.yaml and *.yml files, sorted."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()))
        else:
            out.append(path)
    return out


def _load_all(paths: list[Path]) -> tuple[dict[Path, TenantFile], list[str]]:
    """Validate every file before anything is written, so one run shows every error."""
    loaded: dict[Path, TenantFile] = {}
    errors: list[str] = []
    for path in paths:
        try:
            loaded[path] = load_tenant_file(path)
        except TenantFileError as err:
            errors.append(str(err))
    errors.extend(check_files(loaded))
    return loaded, errors


def _read_keys_file(path: Path) -> list[dict[str, object]]:
    if not path.exists() or path.stat().st_size == 0:
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise TypeError("not a JSON list")
    return data


def _check_keys_out(path: Path | None) -> str | None:
    """Refuse an unusable --keys-out before writing anything: losing a key shown once means minting it again."""
    if path is None:
        return None
    if not path.parent.is_dir():
        return f"--keys-out {path}: directory {path.parent} does not exist"
    try:
        _read_keys_file(path)
    except (OSError, ValueError, TypeError) as exc:
        return f"--keys-out {path}: existing file is not a JSON list of keys ({exc}); refusing to overwrite it"
    return None


def _emit_keys(keys: list[KeyCreated], keys_out: Path | None) -> None:
    """Show new keys once: printed, or appended (mode 0600) to the --keys-out JSON list."""
    if not keys:
        return
    if keys_out is not None:
        data = _read_keys_file(keys_out) + [k.model_dump(mode="json") for k in keys]
        tmp = keys_out.with_name(keys_out.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, keys_out)
        print(f"{len(keys)} new key(s) appended to {keys_out}; they are not shown again.")
        return
    print("\nNew keys (shown only now; store them in a secret manager):")
    for key in keys:
        print(f"  {key.role.value:<13} {key.owner:<24} {key.name:<18} {key.secret}")


def _print_report(report: ApplyReport) -> None:
    for line in report.lines:
        print(f"  {line}")
    print(report.summary())


def cmd_validate(args: argparse.Namespace) -> int:
    paths = _expand(args.files)
    if not paths:
        print("error: no tenant files given", file=sys.stderr)
        return 1
    loaded, errors = _load_all(paths)
    for path, tf in loaded.items():
        if not any(e.startswith(f"{path}:") for e in errors):
            print(f"{path}: ok (tenant {tf.tenant.id}: {len(tf.programs)} program(s), {len(tf.stores)} store(s))")
    for error in errors:
        print(error, file=sys.stderr)
    return 1 if errors else 0


def cmd_apply(args: argparse.Namespace) -> int:
    from chalicelib.errors import ApiError

    paths = _expand(args.files)
    keys_out = Path(args.keys_out) if args.keys_out else None
    loaded, errors = _load_all(paths)
    if not paths:
        errors.append("error: no tenant files given")
    if problem := _check_keys_out(keys_out):
        errors.append(problem)
    if errors:
        for error in errors:
            print(error, file=sys.stderr)
        print("nothing applied", file=sys.stderr)
        return 1
    _connect(args)
    from chalicelib.services.tenancy.tenant_files import preflight

    for path, tf in loaded.items():
        try:
            preflight(path, tf)
        except TenantFileError as err:
            errors.append(str(err))
    if errors:
        for error in errors:
            print(error, file=sys.stderr)
        print("nothing applied", file=sys.stderr)
        return 1

    keys: list[KeyCreated] = []
    try:
        for path, tf in loaded.items():
            try:
                report = apply_tenant_file(path, args.actor, tenant_file=tf)
            except TenantApplyInterrupted as err:
                _print_report(err.report)
                keys.extend(err.report.created_keys)
                print(f"error: {err}", file=sys.stderr)
                return 1
            except (TenantFileError, ApiError) as err:
                print(f"{path}: error: {err}" if isinstance(err, ApiError) else str(err), file=sys.stderr)
                return 1
            _print_report(report)
            keys.extend(report.created_keys)
    finally:
        _emit_keys(keys, keys_out)
    return 0


def cmd_platform_key(args: argparse.Namespace) -> int:
    keys_out = Path(args.keys_out) if args.keys_out else None
    if problem := _check_keys_out(keys_out):
        print(problem, file=sys.stderr)
        return 1
    _connect(args)
    key = ensure_platform_key(args.name, actor=args.actor)
    if key is None:
        print("An active platform key already exists; nothing created.")
        return 0
    print(f"platform key {key.key_id}: created")
    _emit_keys([key], keys_out)
    return 0


def cmd_first_admin(args: argparse.Namespace) -> int:
    """The first person who can sign in (and invite everyone else); the secrets are printed here only."""
    _connect(args)
    import segno

    from chalicelib.domain.identity import normalize_email
    from chalicelib.services.identity.bootstrap import ensure_platform_admin

    email = normalize_email(args.email)
    if email is None:
        print(f"error: {args.email!r} is not an e-mail address", file=sys.stderr)
        return 2
    made = ensure_platform_admin(email)
    if made is None:
        print(f"{email} already has an account; nothing created.")
        return 0
    print(f"platform admin {made.email}: created\n  password:   {made.password}\n  MFA secret: {made.mfa_secret}\n"
          f"  {made.otpauth_uri}\nScan this with an authenticator app (or type the secret into it):")
    segno.make(made.otpauth_uri, error="m").terminal(compact=True)
    return 0


def cmd_triggers(args: argparse.Namespace) -> int:
    """The trigger messages' daily run of every program with a trigger on, now (the local stack has no scheduler);
    the mail worker sends what it queues. Safe to repeat: each trigger fires once per customer per occasion."""
    _connect(args)
    from chalicelib.services.marketing import triggers
    from chalicelib.services.program import catalog
    from chalicelib.storage import triggers as trigger_store

    runs = 0
    for tenant in catalog.active_tenants():
        for program_id, doc in trigger_store.all_settings(tenant.tenant_id).items():
            if not any(spec.enabled for spec in doc.triggers().values()):
                continue
            run = triggers.run_now(tenant.tenant_id, program_id)
            runs += 1
            print(f"  {tenant.tenant_id}/{program_id:<24} {run.customers} customer(s), {run.queued} message(s) "
                  f"queued {dict(run.by_kind)}")
    print(f"trigger runs: {runs}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """The scheduled daily sweep, run synchronously (the local stack has no scheduler)."""
    _connect(args)
    from chalicelib import clock
    from chalicelib.services.program import sweeps

    at = clock.now()
    results = sweeps.run_daily(at)
    for scope, progress in results.items():
        print(f"  {scope:<32} {progress.cards_seen} card(s) looked at, {progress.cards_changed} changed, "
              f"{progress.entries} ledger entries")
    print(f"daily sweep for {at.date().isoformat()}: {len(results)} scope(s) done")
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    """Print each card whose balance disagrees with its ledger; exit 1 if any does (a paging-worthy finding)."""
    _connect(args)
    from chalicelib.services.reporting.reconciliation import ReconciliationReport, reconcile

    report = ReconciliationReport()
    for scope in args.scope or [None]:
        report.merge(reconcile(scope))
    for m in report.mismatches:
        print(f"MISMATCH {m.scope} card {m.number}: {m.field}: card {m.card_value}, ledger {m.ledger_value}")
    print(f"{report.cards} card(s), {report.entries} ledger entr{'y' if report.entries == 1 else 'ies'}: "
          f"{'all balances equal their ledgers' if report.ok else f'{len(report.mismatches)} mismatch(es)'}")
    return 0 if report.ok else 1


def cmd_usage_keys(args: argparse.Namespace) -> int:
    """Put every agency, tenant and the platform in its usage plan (stacks that predate request limits, or repairs).

    Idempotent; deleting tenants lose their key. Needs USAGE_PLAN_IDS (the API function's value) in the environment.
    """
    _connect(args)
    from chalicelib.domain.rate_limits import AGENCY_PLAN, ANONYMOUS, ANONYMOUS_PLAN, PLATFORM_PLAN
    from chalicelib.storage import directory, usage_keys

    if not usage_keys.configured():
        print("USAGE_PLAN_IDS is not set: there are no usage plans to register keys in.", file=sys.stderr)
        return 1
    counts = {"changed": 0, "unchanged": 0, "removed": 0}

    def note(what: str, changed: bool, removal: bool = False) -> None:
        status = ("removed" if removal else "changed") if changed else "unchanged"
        counts[status] += 1
        if changed:
            print(f"  {what}: {status}")

    note("platform", usage_keys.ensure_key("platform", "platform", PLATFORM_PLAN))
    note("anonymous (failed authentications)", usage_keys.ensure_key(*ANONYMOUS, ANONYMOUS_PLAN))
    agency_cursor: str | None = None
    while True:
        agencies, agency_cursor = directory.list_agencies(200, agency_cursor)
        for agency in agencies:
            note(f"agency {agency.agency_id}", usage_keys.ensure_key("agency", agency.agency_id, AGENCY_PLAN))
            cursor: str | None = None
            while True:
                tenants, cursor = directory.list_tenants_of_agency(agency.agency_id, 200, cursor)
                for tenant in tenants:
                    if tenant.status.value == "deleting":
                        note(f"tenant {tenant.tenant_id}", usage_keys.remove_key("tenant", tenant.tenant_id), True)
                    else:
                        note(f"tenant {tenant.tenant_id} ({tenant.plan.value})",
                             usage_keys.ensure_key("tenant", tenant.tenant_id, tenant.plan.value))
                if cursor is None:
                    break
        if agency_cursor is None:
            break
    print(f"usage keys: {counts['changed']} changed, {counts['removed']} removed, {counts['unchanged']} unchanged")
    return 0


class _HttpFailed(Exception):
    """An API call of import-customers failed; the message says which and why."""


def _http(method: str, url: str, key: str | None, body: Any = None, size: int | None = None) -> dict[str, Any]:
    """One HTTP call with the standard library; JSON bodies unless `size` is given (a file streamed as is)."""
    import urllib.error
    import urllib.request

    if not url.startswith(("http://", "https://")):
        raise _HttpFailed(f"{url.split('?')[0]}: only http(s) URLs are used")
    headers: dict[str, str] = {}
    data = body
    if size is not None:
        headers["Content-Length"] = str(size)
        headers["Content-Type"] = "text/csv"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 (http(s) only)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (checked above)
            raw = response.read()
    except urllib.error.HTTPError as err:
        detail = err.read().decode("utf-8", errors="replace")
        try:
            detail = json.loads(detail)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            detail = detail[:200]
        raise _HttpFailed(f"{method} {url.split('?')[0]}: {err.code} {detail}") from None
    except urllib.error.URLError as err:
        raise _HttpFailed(f"{method} {url.split('?')[0]}: {err.reason}") from None
    return json.loads(raw) if raw else {}


def cmd_import_customers(args: argparse.Namespace) -> int:
    """Create the import, PUT the file to its presigned URL, start it and poll, drawing a bar on stderr."""
    import time

    from chalicelib.domain.imports import render_bar

    path = Path(args.file)
    if not path.is_file():
        print(f"error: {path}: no such file", file=sys.stderr)
        return 1
    base = args.api.rstrip("/") + "/v1/customer-imports"
    spec: dict[str, Any] = {"filename": path.name}
    if args.program:
        spec["program_id"] = args.program
    try:
        created = _http("POST", base, args.key, spec)
        with path.open("rb") as fh:
            _http("PUT", created["upload_url"], None, fh, size=path.stat().st_size)
        status = _http("POST", f"{base}/{created['import_id']}/start", args.key, {})
        while status["status"] not in ("done", "failed"):
            print("\r" + render_bar(status["bytes_done"], status["bytes_total"]), end="", file=sys.stderr, flush=True)
            time.sleep(args.interval)
            status = _http("GET", f"{base}/{created['import_id']}", args.key)
    except _HttpFailed as err:
        print(f"\nerror: {err}", file=sys.stderr)
        return 1
    print("\r" + render_bar(status["bytes_done"], status["bytes_total"]), file=sys.stderr)
    print(f"import {status['import_id']}: {status['status']}; {status['rows']} row(s): {status['created']} created, "
          f"{status['updated']} updated, {status['rejected']} rejected")
    if status.get("result_url"):
        print(f"rejected rows and reasons: {status['result_url']}")
    if status["status"] == "failed":
        print(f"error: {status.get('error')}", file=sys.stderr)
        return 1
    return 3 if status["rejected"] else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traceback", action="store_true", help="on an unexpected error, show the traceback")
    sub = parser.add_subparsers(dest="command", required=True)
    target = argparse.ArgumentParser(add_help=False)
    target.add_argument("--stage", metavar="STAGE",
                        help="act on this deployed stage (dev, prod: the names in .chalice/config.json, the region "
                             "in AWS_DEFAULT_REGION, the shell's credentials); default: the running local stack")

    apply = sub.add_parser("apply", parents=[target],
                           help="validate all files, then create or update their tenants (never deletes)")
    apply.add_argument("files", nargs="+", metavar="FILE", help="tenant YAML files or directories of them")
    apply.add_argument("--keys-out", metavar="PATH", help="append new keys to this JSON file instead of printing them")
    apply.add_argument("--actor", default="cli", help="who to record in the audit log (default: cli)")
    apply.set_defaults(func=cmd_apply)

    validate = sub.add_parser("validate", help="check tenant files without touching AWS")
    validate.add_argument("files", nargs="+", metavar="FILE", help="tenant YAML files or directories of them")
    validate.set_defaults(func=cmd_validate)

    platform = sub.add_parser("platform-key", parents=[target],
                              help="create a platform key unless an active one exists")
    platform.add_argument("--name", default="platform key", help="what the key is for")
    platform.add_argument("--keys-out", metavar="PATH", help="append the key to this JSON file instead of printing it")
    platform.add_argument("--actor", default="cli", help="who to record in the audit log (default: cli)")
    platform.set_defaults(func=cmd_platform_key)

    first = sub.add_parser("first-admin", parents=[target],
                           help="create the first platform admin: password and MFA secret (and its QR code) shown once")
    first.add_argument("email", help="the admin's e-mail address (their sign-in name)")
    first.set_defaults(func=cmd_first_admin)

    sweep = sub.add_parser("sweep", parents=[target],
                           help="run today's daily sweep (points and gift money expiry, tier reviews) now")
    sweep.set_defaults(func=cmd_sweep)

    trig = sub.add_parser("triggers", parents=[target],
                          help="run the trigger messages (welcome, birthday, ...) of every program now")
    trig.set_defaults(func=cmd_triggers)

    usage = sub.add_parser("usage-keys", parents=[target],
                           help="(re)register every tenant's and agency's usage key (request limits)")
    usage.set_defaults(func=cmd_usage_keys)

    rec = sub.add_parser("reconcile", parents=[target],
                         help="check every card's points and money against its ledger (read-only)")
    rec.add_argument("--scope", nargs="+", metavar="S", help="only these owners: tenant ids or coalition.<id>")
    rec.set_defaults(func=cmd_reconcile)

    imp = sub.add_parser("import-customers", help="import a customer CSV through the HTTP API (progress on stderr)")
    imp.add_argument("file", metavar="FILE", help="the CSV file: header line first, UTF-8 or cp1251, ; or ,")
    imp.add_argument("--api", required=True, metavar="URL", help="the API's base URL, e.g. http://127.0.0.1:8000")
    imp.add_argument("--key", required=True, metavar="KEY", help="a tenant admin key")
    imp.add_argument("--program", metavar="P", help="issue a virtual card of this program to each new customer")
    imp.add_argument("--interval", type=float, default=2.0, help="seconds between progress polls (default: 2)")
    imp.set_defaults(func=cmd_import_customers)
    return parser


def main(argv: Sequence[str] | None = None, *, target: Target | None = None) -> int:
    """Entry point; returns the exit status instead of exiting so tests and runners can call it.

    `target`: for in-process callers whose AWS is already configured (tests); the command line resolves its own.
    """
    args = build_parser().parse_args(argv)
    args.target = target
    try:
        return int(args.func(args))
    except TargetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.traceback:
            raise
        print(f"error: {args.command} failed: {_one_line(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
