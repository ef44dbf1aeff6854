"""The local stack behind `make run`: moto, the Chalice API, the SQS workers and the example tenants, in one process.

    python -m infra.local.run     # API on 127.0.0.1:$PORT (8000), moto on 127.0.0.1:$MOTO_PORT (5000)

Environment: PORT, MOTO_PORT, LOCAL_STATE_DIR (default .local/), MOTO_VERBOSE=1 (log every AWS call),
MOTO_TRANSACTION_SHIM=0 (moto's own TransactWriteItems, O(table size): infra/local/moto_patches.py).

What it does, in order:
  1. sets the `local` stage's environment from `.chalice/config.json` plus AWS_ENDPOINT_URL
     and fake credentials, before anything in chalicelib/app.py is imported (settings are read
     at import);
  2. starts the serialised moto server (infra/local/moto_server.py) and restores the saved state;
  3. creates the tables, queues and bucket of infra/resources.json (idempotent);
  4. bootstraps: a platform key if none is active, then applies every `tenants/*.yaml`
     (idempotent) and gives each of those tenants a support key if it has no active one,
     saving keys created now to `.local/keys.json` (plaintext, dev only: a key's secret is
     shown once and cannot be read back); the first platform admin, a person (admin@loyalty.local,
     a generated password, an enrolled authenticator), once per stack, saved to `.local/admin.json`
     (infra/local/first_admin.py); and verifies the staff sender (STAFF_MAIL_FROM) in SES, so
     invitations can be sent;
  5. writes `.local/stack.json` (process id, moto URL, the stage's environment): how
     `python -m chalicelib.cli` finds this stack (chalicelib/cli_target.py);
  6. serves the API with `chalice local`'s server, with gateway responses emulated as deployed
     (infra/local/gateway.py), and runs the SQS workers with a poller (infra/local/poller.py).
Every e-mail and SMS sent stays in moto: `<moto URL>/_local/outbox` shows them (infra/local/outbox.py), with
every wallet push (APNs and Google Wallet go to moto's recorder; test pass keys are generated on first start).
Ctrl-C (or SIGTERM) stops the API, the workers, then moto, with the recording complete on disk,
and removes `.local/stack.json`.

Persistence: state lives in `$LOCAL_STATE_DIR` (default `.local/`). Every request that changes
DynamoDB or S3 is appended to `.local/moto-recording.log` (moto's recorder format). On start the
file is replayed into the fresh moto, then recording continues, appending. Not kept: SQS messages
(jobs queued but not yet processed when the stack stopped are lost; a tenant being deleted at that
moment stays `deleting`). If the replay fails (a corrupt file, or a moto upgrade that no longer
accepts an old request) the file is moved to `.local/moto-recording.<timestamp>.bak`, keys.json
and admin.json likewise, and the stack starts empty with a warning; a torn last line (killed
mid-write) is just dropped. To start over on purpose: `make reset-local` (or delete `.local/`).
A table that already exists is not altered when infra/ changes its indexes: reset then.
The example tenants are re-applied on every start, so one deleted through the API comes back
(with new keys); saved keys that no longer authenticate are dropped from keys.json.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
STAGE = "local"


def _say(message: str = "") -> None:
    print(message, flush=True)


def _warn(message: str) -> None:
    print(f"\n*** WARNING: {message}\n", file=sys.stderr, flush=True)


def state_dir() -> Path:
    return Path(os.environ.get("LOCAL_STATE_DIR") or PROJECT_DIR / ".local").resolve()


def chalice_config() -> Any:
    """The chalice Config of the `local` stage, as `chalice local --stage local` builds it."""
    from chalice.cli.factory import CLIFactory

    return CLIFactory(str(PROJECT_DIR)).create_config_obj(chalice_stage_name=STAGE)


def set_environment(config: Any, moto_url: str) -> None:
    """The Lambda environment of the local stage, pointed at moto. Must run before chalicelib is imported."""
    stale = [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_")]  # per-service endpoints would win
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", *stale):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": moto_url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION") or "eu-central-1",
            **{k: str(v) for k, v in config.environment_variables.items()},
            "STAGE": STAGE,
        }
    )


def wallet_to_recorder(moto_port: int) -> None:
    """Wallet pushes (APNs, Google Wallet) go to moto's recorder, shown in the outbox (local/wallet_recorder.py)."""
    recorder = f"http://{HOST}:{moto_port}/_local/wallet-pushes"
    for name, path in (("APNS_URL", "/apns"), ("GOOGLE_WALLET_API", "/google"), ("GOOGLE_TOKEN_URL", "/google/token"),
                       ("GOOGLE_CALLBACK_KEYS_URL", "/google/keys")):
        os.environ.setdefault(name, recorder + path)


def wallet_test_keys(state: Path) -> None:
    """A self-signed pass certificate chain and a Google key on first start (infra/local/wallet_keys.py)."""
    from infra.local import wallet_keys

    if wallet_keys.ensure_configured():
        _say(f"Generated test wallet pass keys (a self-signed chain, not Apple's) in {state / 'wallet'}")


def _timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def restore(moto: Any, keys_path: Path, *others: Path) -> bool:
    """Replay the recording into moto; True if earlier state was restored, False if starting empty.

    Starting empty, the saved credentials (`keys_path` and `others`) are moved aside: they belonged to the
    state that is gone."""
    from infra.local.moto_server import ReplayError

    path: Path = moto.recording_path
    restored = False
    if path.exists() and path.stat().st_size > 0:
        started = time.monotonic()
        try:
            result = moto.replay()
        except ReplayError as err:
            backup = path.with_name(f"{path.stem}.{_timestamp()}.bak")
            path.rename(backup)
            moto.reset()
            _warn(
                f"could not restore local data from {path}: {err}\n"
                f"    The file was moved to {backup} and the stack starts EMPTY.\n"
                "    (A moto upgrade can make old recordings unreadable; the example tenants are re-created.)"
            )
        else:
            restored = True
            torn = " (dropped a torn last line)" if result.dropped_torn_line else ""
            _say(f"Restored local data: replayed {result.requests} requests in "
                 f"{time.monotonic() - started:.1f}s from {path}{torn}")
    for saved in (keys_path, *others):
        if not restored and saved.exists():
            # Its credentials belonged to the state that is gone; they would only mislead.
            backup = saved.with_name(f"{saved.stem}.{_timestamp()}.bak")
            saved.rename(backup)
            _say(f"Moved stale {saved.name} to {backup.name}")
    return restored


def load_keys(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        return list(json.loads(path.read_text())["keys"])
    except (ValueError, KeyError, TypeError) as err:
        _warn(f"ignoring unreadable {path}: {err}")
        return []


def save_keys(path: Path, keys: list[dict[str, Any]]) -> None:
    """Atomically, readable by the owner only: these are live credentials, if only local ones."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": keys}, indent=2) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)


def _key_entry(key: Any, source: str, tenant_id: str | None = None, agency_id: str | None = None) -> dict[str, Any]:
    role = getattr(key.role, "value", key.role)
    return {
        "role": str(role),
        "owner": key.owner,
        "tenant_id": tenant_id if role in ("tenant_admin", "pos", "support") else None,
        "agency_id": agency_id,
        "key_id": key.key_id,
        "name": key.name,
        "secret": key.secret,
        "source": source,
    }


def bootstrap(keys_path: Path) -> list[dict[str, Any]]:
    """Platform key and example tenants, each with a support key too (the call-center role, which provisioning
    does not mint); returns every known key (saved ones plus those created now)."""
    from chalicelib.cli import apply_tenant_file, ensure_platform_key
    from chalicelib.domain.roles import Role
    from chalicelib.services.tenancy.keys import ensure_key
    from chalicelib.services.tenancy.scopes import Scope
    from chalicelib.services.tenancy.tenant_files import TenantApplyInterrupted, TenantFileError

    keys = load_keys(keys_path)
    platform_key = ensure_platform_key("local platform key")
    if platform_key is not None:
        keys.append(_key_entry(platform_key, "platform"))
        save_keys(keys_path, keys)
    for path in sorted((PROJECT_DIR / "tenants").glob("*.yaml")):
        source = str(path.relative_to(PROJECT_DIR))
        try:
            report = apply_tenant_file(path)
        except TenantApplyInterrupted as exc:
            report = exc.report
            _warn(f"{source}: {exc}")
        except TenantFileError as exc:
            _warn(f"{source} was not applied:\n{exc}")
            continue
        if report.writes:
            _say(f"Applied {source}: " + "; ".join(report.lines))
        agency_id = report.agency_id or None
        tenant_id = report.tenant_id or None
        created = list(report.created_keys)
        if tenant_id:
            support = ensure_key(Scope.tenant(tenant_id, agency_id), Role.SUPPORT, "local support key", "local")
            created += [support] if support else []
        for key in created:
            keys.append(_key_entry(key, source, tenant_id, agency_id))
        if created:
            save_keys(keys_path, keys)
    if not keys_path.exists():
        save_keys(keys_path, keys)
    return keys


def prune_keys(keys_path: Path, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop saved keys that no longer authenticate (revoked, rotated away, tenant purged), keep the file honest."""
    from chalicelib.services.tenancy.keys import AuthFailure, authenticate

    kept = []
    for key in keys:
        try:
            authenticate(key["secret"])
        except AuthFailure as failure:
            if failure.code == "tenant_suspended":  # may come back: keep
                kept.append(key)
            continue
        kept.append(key)
    if len(kept) != len(keys):
        _say(f"Dropped {len(keys) - len(kept)} saved key(s) that no longer work from {keys_path.name}")
        save_keys(keys_path, kept)
    return kept


def _key_order(key: dict[str, Any]) -> tuple[int, str, str]:
    order = {"platform": 0, "agency": 1, "tenant_admin": 2, "pos": 3, "support": 4}
    return order.get(key["role"], 9), key.get("tenant_id") or key.get("agency_id") or "", key["role"]


def _example_tenant(keys: list[dict[str, Any]]) -> str:
    """The first example tenant (for the member-site address the banner shows)."""
    tenants = sorted(k["tenant_id"] for k in keys if k.get("tenant_id"))
    return "coffee-chain" if "coffee-chain" in tenants or not tenants else tenants[0]


def banner(api_url: str, moto_url: str, keys: list[dict[str, Any]], keys_path: Path, recording: Path,
           admin_lines: list[str] | None = None) -> str:
    lines = [
        "",
        "=" * 100,
        f"Loyalty API, stage {STAGE}: {api_url}",
        f"  console:  {api_url}/console  (sign in with the platform admin below)",
        f"  members:  {api_url}/m/{_example_tenant(keys)}  (a tenant's member site; SMS codes are in the outbox)",
        f"  OpenAPI:  {api_url}/v1/openapi.json    docs: {api_url}/v1/docs",
        f"  moto:     {moto_url}  (state recorded in {recording})",
        f"  outbox:   {moto_url}/_local/outbox  (every e-mail, SMS and wallet push sent; nothing leaves the machine)",
        "",
        f"API keys (dev only, kept in {keys_path}):",
        f"  {'ROLE':<13} {'OWNER':<24} {'TENANT':<16} KEY",
    ]
    for key in sorted(keys, key=_key_order):
        lines.append(f"  {key['role']:<13} {key['owner']:<24} {key.get('tenant_id') or '-':<16} {key['secret']}")
    if not keys:
        lines.append(f"  (none known: delete {keys_path.parent} to start over with fresh keys)")
    pos = next((k for k in sorted(keys, key=_key_order) if k["role"] == "pos"), None)
    any_key = pos or (keys[0] if keys else None)
    lines += ["", "Try:"]
    secret = any_key["secret"] if any_key else "<key>"
    lines.append(f'  curl -H "Authorization: Bearer {secret}" {api_url}/v1/whoami')
    if admin_lines:
        lines += ["", *admin_lines]
    lines += ["", "Ctrl-C stops everything.", "=" * 100, ""]
    return "\n".join(lines)


STACK_ENVIRONMENT = ("STAGE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "PUBLIC_BASE_URL", "CONSOLE_BASE_URL",
                     "APNS_URL", "GOOGLE_WALLET_API", "GOOGLE_TOKEN_URL", "GOOGLE_CALLBACK_KEYS_URL")


def stack_environment(config: Any) -> dict[str, str]:
    """What the CLI needs to act on this stack as its functions do: the stage's variables, endpoint and region."""
    names = [*config.environment_variables, *STACK_ENVIRONMENT]
    return {name: os.environ[name] for name in names if name in os.environ}


def serve_in_background(server: Any) -> threading.Thread:
    """The API's HTTP loop in a daemon thread. It runs the HTTP server's own loop: chalice's `serve_forever` first
    prints "Serving on ..." from that thread, which landed inside the main thread's lines (the banner shows the
    URL anyway)."""
    thread = threading.Thread(target=server.server.serve_forever, name="chalice-local", daemon=True)
    thread.start()
    return thread


def main() -> int:
    moto_port = int(os.environ.get("MOTO_PORT") or 5000)
    api_port = int(os.environ.get("PORT") or 8000)
    state = state_dir()
    state.mkdir(parents=True, exist_ok=True)
    lock_file = (state / "run.lock").open("w")  # held until exit: two stacks must not append to one recording
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        _warn(f"another local stack is using {state}; stop it first (or set LOCAL_STATE_DIR)")
        return 1
    keys_path = state / "keys.json"
    admin_path = state / "admin.json"
    recording = state / "moto-recording.log"

    config = chalice_config()
    set_environment(config, f"http://{HOST}:{moto_port}")
    os.environ["PUBLIC_BASE_URL"] = f"http://{HOST}:{api_port}"  # links in mail point at this API, whatever PORT
    # Staff invitation and password-reset links open the console's pages: absolute, on this API.
    os.environ.setdefault("CONSOLE_BASE_URL", os.environ["PUBLIC_BASE_URL"])
    wallet_to_recorder(moto_port)

    from infra.local.moto_server import LocalMotoServer

    # The transaction shim is installed before the replay and the API: both run transactions.
    shim = os.environ.get("MOTO_TRANSACTION_SHIM", "1") != "0"
    moto = LocalMotoServer(
        HOST, moto_port, recording, verbose=bool(os.environ.get("MOTO_VERBOSE")), transaction_shim=shim
    )
    try:
        moto.start()
    except (OSError, SystemExit) as err:  # werkzeug exits on a busy port
        reason = err if isinstance(err, OSError) else "address already in use"
        _warn(f"cannot start moto on {HOST}:{moto_port}: {reason}. Set MOTO_PORT to a free port.")
        return 1

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    server: Any = None
    server_thread: threading.Thread | None = None
    poller: Any = None
    try:
        restore(moto, keys_path, admin_path)
        moto.start_recording()

        from infra.local.resources import create_resources

        created = create_resources(STAGE)
        from chalicelib.settings import settings

        expected = {settings.directory_table, settings.api_keys_table, settings.audit_table,
                    settings.loyalty_table, settings.jobs_queue, settings.reports_bucket}
        missing = expected - set(created.values())
        if missing:
            _warn(f"the app uses {sorted(missing)}, which infra/resources.json does not create for stage {STAGE}")

        keys = prune_keys(keys_path, bootstrap(keys_path))
        from infra.local import first_admin

        first_admin.verify_staff_sender()
        wallet_test_keys(state)
        admin_lines: list[str] = []
        try:
            admin, outcome = first_admin.ensure(admin_path)
        except Exception as err:  # the keys still work: serve, and say why there is no person to sign in as
            _warn(f"could not create the first platform admin {first_admin.ADMIN_EMAIL}: {err!r}")
        else:
            if outcome == "created":
                _say(f"Created the first platform admin {first_admin.ADMIN_EMAIL} (saved to {admin_path.name})")
            elif outcome == "re-enrolled":
                _say("Enrolled the first platform admin's authenticator again (the replay cannot; see first_admin.py)")
            elif outcome != "found":
                _warn(f"{first_admin.ADMIN_EMAIL}: {outcome}")
            admin_lines = first_admin.banner_lines(admin, admin_path, f"http://{HOST}:{api_port}", sys.stdout.encoding)
        from chalicelib import cli_target

        api_url = f"http://{HOST}:{api_port}"
        # Before the API answers, so whoever waits for the API can already run the CLI against this stack.
        cli_target.write_stack_file(state, pid=os.getpid(), moto_url=moto.url, api_url=api_url,
                                    environment=stack_environment(config))

        from chalice.local import ChaliceRequestHandler, ThreadedHTTPServer, create_local_server

        ThreadedHTTPServer.request_queue_size = 128  # socketserver's default of 5 resets a burst of tills
        # Headers and body leave in two writes: with Nagle on, a keep-alive client's delayed ACK holds the
        # second one ~40 ms (measured: /v1/health 47.6 ms kept alive, 4.0 ms with this).
        ChaliceRequestHandler.disable_nagle_algorithm = True

        import app as app_module
        from infra.local.gateway import install_gateway_responses, install_rate_limits
        from infra.local.poller import Poller

        install_gateway_responses()
        install_rate_limits(os.environ.get("LOCAL_RATE_LIMITS", "1") != "0")  # usage plans as deployed (README)
        try:
            server = create_local_server(app_module.app, config, HOST, api_port)
        except OSError as err:
            _warn(f"cannot serve the API on {HOST}:{api_port}: {err}. Set PORT to a free port.")
            return 1
        poller = Poller(app_module, config)
        workers = poller.start()
        server_thread = serve_in_background(server)
        _say(f"SQS workers: {', '.join(f'{w.source.name} <- {w.queue_url}' for w in workers) or 'none'}")
        _say(banner(api_url, moto.url, keys, keys_path, recording, admin_lines))
        while not stop.wait(0.5):
            if not server_thread.is_alive():
                _warn("the API server stopped unexpectedly")
                return 1
        return 0
    finally:
        _say("Stopping: API, workers, moto...")
        from chalicelib import cli_target

        cli_target.remove_stack_file(state, os.getpid())
        if server is not None:
            server.shutdown()
            server.server.server_close()
        if poller is not None:
            poller.stop()
        moto.stop()
        _say(f"Stopped. Local data is kept in {state}.")


if __name__ == "__main__":
    sys.exit(main())
