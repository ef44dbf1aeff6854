"""Which AWS the operator CLI acts on: the running local stack, or a deployed stage named on the command line.

Why this exists: settings and table names are read from the environment when
`chalicelib.settings` is imported, so the CLI used to act on whatever the
shell happened to reach: a PynamoDB traceback without credentials, or real
AWS with a developer's credentials. The target is now chosen before anything
that talks to AWS is imported, and never guessed:

* `--stage NAME`: the deployed stage NAME, with the table, queue and bucket
  names `.chalice/config.json` gives its functions (what `make package`
  deploys), the region from AWS_DEFAULT_REGION / AWS_REGION (else
  eu-central-1, the stack's default) and the shell's credentials;
* no `--stage`: the local stack that `make run` is running, found through
  `$LOCAL_STATE_DIR/stack.json` (default `.local/`), which the stack writes
  once it is up and removes when it stops; its embedded AWS and fake
  credentials, whatever the shell holds;
* neither: an error, never a default.

Standard library only: `validate` and the stack's launcher import it before
the environment is set.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT_DIR = Path(__file__).resolve().parents[1]
CHALICE_CONFIG = PROJECT_DIR / ".chalice" / "config.json"
STACK_FILE = "stack.json"
LOCAL_STAGE = "local"
DEFAULT_REGION = "eu-central-1"
"""The region settings.py falls back to: a deployed stage's tables are looked up there unless the shell says."""
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
SHELL_ONLY = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
"""Shell credentials that would override the local stack's fake ones."""


class TargetError(Exception):
    """No usable target; the message is the one line the CLI prints before exiting with status 2."""


@dataclass(frozen=True)
class Target:
    description: str
    """One line: what the command is about to act on."""
    environment: dict[str, str] = field(default_factory=dict)
    """Variables to set before chalicelib.settings is imported."""
    unset: tuple[str, ...] = ()
    """Variables to remove (shell credentials and per-service endpoints the target must not inherit)."""

    def activate(self, environ: MutableMapping[str, str] | None = None) -> None:
        """Point this process at the target. Must run before chalicelib.settings is imported."""
        env = os.environ if environ is None else environ
        for name in self.unset:
            env.pop(name, None)
        env.update(self.environment)

    @classmethod
    def as_configured(cls, description: str = "the AWS this process is already configured for") -> Target:
        """In-process callers (tests) whose environment and settings are already set: nothing is changed."""
        return cls(description)


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where `make run` keeps its state: $LOCAL_STATE_DIR, else `.local/` in the project (as infra/local/run.py)."""
    env = os.environ if environ is None else environ
    return Path(env.get("LOCAL_STATE_DIR") or PROJECT_DIR / ".local").resolve()


# --- the local stack's own record of itself --------------------------------------------

def write_stack_file(state: Path, *, pid: int, moto_url: str, api_url: str, environment: Mapping[str, str]) -> Path:
    """Called by the local stack once it serves: how to reach its embedded AWS, for the CLI."""
    path = state / STACK_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": pid, "moto_url": moto_url, "api_url": api_url,
                               "environment": dict(environment)}, indent=2) + "\n")
    tmp.replace(path)
    return path


def remove_stack_file(state: Path, pid: int) -> None:
    """Called by the local stack when it stops; leaves a file another stack wrote alone."""
    path = state / STACK_FILE
    try:
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _answers(url: str, timeout: float = 1.0) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout):
            return True
    except OSError:
        return False


def _shown(path: Path) -> str:
    """The path relative to the working directory when it is below it (`.local/stack.json`), else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def local_stack(state: Path, environ: Mapping[str, str] | None = None) -> Target:
    """The running local stack of `state`, or TargetError saying why there is none."""
    env = os.environ if environ is None else environ
    path = state / STACK_FILE
    if not path.exists():
        raise TargetError(f"no local stack is running (no {_shown(path)}): start one with `make run`, "
                          "or name a deployed stage with --stage")
    try:
        info: dict[str, Any] = json.loads(path.read_text())
        pid, moto_url, environment = int(info["pid"]), str(info["moto_url"]), dict(info["environment"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TargetError(f"{_shown(path)} is unreadable ({err}): restart the local stack (`make run`)") from None
    if not _alive(pid):
        raise TargetError(f"no local stack is running ({_shown(path)} is left over from process {pid}, which has "
                          "exited): start one with `make run`, or name a deployed stage with --stage")
    if not _answers(moto_url):
        raise TargetError(f"the local stack (process {pid}) does not answer at {moto_url}: restart it (`make run`)")
    per_service = tuple(name for name in env if name.startswith("AWS_ENDPOINT_URL_"))
    return Target(f"the local stack (embedded AWS at {moto_url}, stage {environment.get('STAGE', LOCAL_STAGE)}, "
                  f"process {pid}, {_shown(path)})",
                  {**{str(k): str(v) for k, v in environment.items()}, **LOCAL_CREDENTIALS},
                  SHELL_ONLY + per_service)


# --- a deployed stage ----------------------------------------------------------------------

def stage_environment(stage: str, config_path: Path = CHALICE_CONFIG) -> dict[str, str]:
    """The variables `.chalice/config.json` gives the stage's functions (app-wide, then the stage's own)."""
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as err:
        raise TargetError(f"cannot read {config_path}: {err}") from None
    stages = config.get("stages") or {}
    if stage not in stages:
        known = ", ".join(sorted(s for s in stages if s != LOCAL_STAGE)) or "none"
        raise TargetError(f"no stage {stage!r} in {_shown(config_path)} (deployed stages: {known})")
    env = {**(config.get("environment_variables") or {}), **(stages[stage].get("environment_variables") or {})}
    return {str(k): str(v) for k, v in env.items()} | {"STAGE": stage}


def deployed_stage(stage: str, environ: Mapping[str, str] | None = None,
                   config_path: Path = CHALICE_CONFIG) -> Target:
    env = os.environ if environ is None else environ
    variables = stage_environment(stage, config_path)
    region = env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or DEFAULT_REGION
    tables = variables.get("DIRECTORY_TABLE", f"loyalty-{stage}-directory").rsplit("-", 1)[0]
    where = f"the endpoint {env['AWS_ENDPOINT_URL']} of AWS_ENDPOINT_URL" if env.get("AWS_ENDPOINT_URL") else "AWS"
    profile = f"AWS profile {env['AWS_PROFILE']}" if env.get("AWS_PROFILE") else "the shell's AWS credentials"
    return Target(f"the deployed stage {stage} ({where}, region {region}, tables {tables}-*, {profile})",
                  {**variables, "AWS_DEFAULT_REGION": region})


def resolve(stage: str | None, *, state: Path | None = None, environ: Mapping[str, str] | None = None,
            config_path: Path = CHALICE_CONFIG) -> Target:
    """`--stage NAME` (`local`: the running local stack), else the running local stack, else TargetError."""
    folder = state if state is not None else state_dir(environ)
    if stage is None or stage == LOCAL_STAGE:
        return local_stack(folder, environ)
    return deployed_stage(stage, environ, config_path)
