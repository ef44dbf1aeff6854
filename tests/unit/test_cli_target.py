"""The operator CLI's target: the running local stack or an explicit deployed stage, never a guess; one-line errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import NoCredentialsError
from pynamodb.exceptions import ScanError

from chalicelib import cli, cli_target
from chalicelib.cli_target import Target, TargetError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def listening() -> Iterator[str]:
    """A URL something answers on, standing in for the stack's embedded AWS."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def write_stack(state: Path, pid: int, moto_url: str) -> None:
    state.mkdir(parents=True, exist_ok=True)
    cli_target.write_stack_file(state, pid=pid, moto_url=moto_url, api_url="http://127.0.0.1:8000", environment={
        "STAGE": "local", "AWS_ENDPOINT_URL": moto_url, "AWS_DEFAULT_REGION": "eu-central-1",
        "DIRECTORY_TABLE": "loyalty-local-directory"})


def exited_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_running_local_stack_is_the_target_with_its_own_endpoint_region_and_fake_credentials(
        tmp_path: Path, listening: str) -> None:
    write_stack(tmp_path, os.getpid(), listening)
    shell = {"AWS_PROFILE": "prod-admin", "AWS_ACCESS_KEY_ID": "AKIAREALKEY", "AWS_SESSION_TOKEN": "t",
             "AWS_DEFAULT_REGION": "us-west-2", "AWS_ENDPOINT_URL_DYNAMODB": "https://dynamodb.example", "HOME": "/h"}
    target = cli_target.resolve(None, state=tmp_path, environ=shell)
    assert target.description.startswith(f"the local stack (embedded AWS at {listening}, stage local, "
                                         f"process {os.getpid()}, ")
    env = dict(shell)
    target.activate(env)
    assert env == {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "STAGE": "local",
                   "AWS_ENDPOINT_URL": listening, "AWS_DEFAULT_REGION": "eu-central-1",
                   "DIRECTORY_TABLE": "loyalty-local-directory", "HOME": "/h"}
    assert cli_target.resolve("local", state=tmp_path, environ=shell) == target


def test_no_local_stack_and_no_stage_is_refused(tmp_path: Path, listening: str) -> None:
    with pytest.raises(TargetError, match=r"^no local stack is running \(no .*stack\.json\): start one with "
                                          r"`make run`, or name a deployed stage with --stage$"):
        cli_target.resolve(None, state=tmp_path, environ={})
    pid = exited_pid()
    write_stack(tmp_path, pid, listening)
    with pytest.raises(TargetError, match=rf"stack\.json is left over from process {pid}, which has exited\)"):
        cli_target.resolve(None, state=tmp_path, environ={})
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        silent = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening: refuses connections
        write_stack(tmp_path, os.getpid(), silent)
        with pytest.raises(TargetError, match=rf"^the local stack \(process {os.getpid()}\) does not answer at "):
            cli_target.resolve(None, state=tmp_path, environ={})


def test_the_stack_file_is_removed_only_by_the_stack_that_wrote_it(tmp_path: Path, listening: str) -> None:
    write_stack(tmp_path, os.getpid(), listening)
    cli_target.remove_stack_file(tmp_path, os.getpid() + 1)
    assert json.loads((tmp_path / "stack.json").read_text())["pid"] == os.getpid()
    cli_target.remove_stack_file(tmp_path, os.getpid())
    assert not (tmp_path / "stack.json").exists()


def test_a_deployed_stage_uses_the_packaged_names_and_says_where_it_acts(tmp_path: Path, listening: str) -> None:
    write_stack(tmp_path, os.getpid(), listening)  # an explicit stage wins over a running local stack
    target = cli_target.resolve("dev", state=tmp_path, environ={"AWS_REGION": "eu-west-1"})
    assert target.description == ("the deployed stage dev (AWS, region eu-west-1, tables loyalty-dev-*, "
                                  "the shell's AWS credentials)")
    assert target.unset == ()
    env = {"AWS_PROFILE": "ops", "DIRECTORY_TABLE": "stale"}
    target.activate(env)
    assert env["AWS_PROFILE"] == "ops" and env["STAGE"] == "dev" and env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert (env["DIRECTORY_TABLE"], env["LOYALTY_TABLE"], env["JOBS_QUEUE"]) == (
        "loyalty-dev-directory", "loyalty-dev-loyalty", "loyalty-dev-jobs")
    assert env["POWERTOOLS_SERVICE_NAME"] == "loyalty", "the app-wide variables too"
    other = cli_target.deployed_stage("prod", {"AWS_PROFILE": "ops", "AWS_ENDPOINT_URL": "https://ydb.example"})
    assert other.description == ("the deployed stage prod (the endpoint https://ydb.example of AWS_ENDPOINT_URL, "
                                 "region eu-central-1, tables loyalty-prod-*, AWS profile ops)")
    with pytest.raises(TargetError, match=r"^no stage 'qa' in .*config\.json \(deployed stages: dev, prod\)$"):
        cli_target.resolve("qa", state=tmp_path, environ={})


def test_in_process_main_never_re_targets_a_configured_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sweep"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("error: settings are already loaded in this process, so the CLI cannot choose its "
                            "target; in-process callers pass main(..., target=Target.as_configured())\n")


def test_an_aws_failure_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.services.reporting import reconciliation

    def fail(scope: str | None) -> None:
        raise ScanError("Failed to scan table", cause=NoCredentialsError())

    monkeypatch.setattr(reconciliation, "reconcile", fail)
    assert cli.main(["reconcile"], target=Target("a test target")) == 1
    assert capsys.readouterr().err == ("reconcile: acting on a test target\n"
                                       "error: reconcile failed: Failed to scan table: Unable to locate credentials\n")
    monkeypatch.setattr(reconciliation, "reconcile", lambda scope: {}["missing"])
    assert cli.main(["reconcile"], target=Target("a test target")) == 1
    assert capsys.readouterr().err.splitlines()[-1] == "error: reconcile failed: KeyError: 'missing'"
    with pytest.raises(KeyError):
        cli.main(["--traceback", "reconcile"], target=Target("a test target"))


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chalicelib.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=False, timeout=120)


def _shell(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A shell with someone's real-looking AWS credentials and no local stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "STAGE"}
    env.update({"LOCAL_STATE_DIR": str(tmp_path / "state"), "HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true",
                **extra})
    return env


@pytest.mark.parametrize("command", [["sweep"], ["triggers"], ["reconcile"], ["apply", "tenants/"],
                                     ["platform-key"], ["usage-keys"]])
def test_without_a_local_stack_or_stage_every_aws_command_refuses_in_one_line(tmp_path: Path,
                                                                             command: list[str]) -> None:
    done = _cli(*command, env=_shell(tmp_path, AWS_ACCESS_KEY_ID="AKIAREALKEY", AWS_SECRET_ACCESS_KEY="real"))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"error: no local stack is running (no {tmp_path / 'state' / 'stack.json'}): start one "
                           "with `make run`, or name a deployed stage with --stage\n")


def test_a_stage_without_credentials_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    # The endpoint is a closed port: were credentials found after all, nothing would reach AWS.
    done = _cli("sweep", "--stage", "dev", env=_shell(tmp_path, AWS_ENDPOINT_URL="http://127.0.0.1:9"))
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        "sweep: acting on the deployed stage dev (the endpoint http://127.0.0.1:9 of AWS_ENDPOINT_URL, region "
        "eu-central-1, tables loyalty-dev-*, the shell's AWS credentials)",
        "error: sweep failed: Failed to query items: Unable to locate credentials"]
