"""Tenant files: the examples validate, and every kind of mistake is reported with the file and the exact field."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicelib import cli
from chalicelib.schemas.tenancy import Activation, ProgramKind, Rounding, TenantFile
from chalicelib.services.tenancy.tenant_files import TenantFileError, load_tenant_file

ROOT = Path(__file__).resolve().parents[2]
TENANTS = ROOT / "tenants"
EXAMPLES = ["coffee-chain.yaml", "fuel-network.yaml", "city-coalition.yaml"]


def example(name: str = "coffee-chain.yaml") -> dict[str, Any]:
    return yaml.safe_load((TENANTS / name).read_text(encoding="utf-8"))


def write(tmp_path: Path, data: Any, name: str = "tenant.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(TenantFileError) as caught:
        load_tenant_file(path)
    assert caught.value.path == str(path)
    assert str(caught.value).splitlines() == [f"{path}: {p}" for p in caught.value.problems]
    return caught.value.problems


# --- the examples -------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_files_validate(name: str) -> None:
    tf = load_tenant_file(TENANTS / name)
    assert isinstance(tf, TenantFile)
    assert tf.agency.id == "demo-agency"
    assert tf.tenant.id == name.removesuffix(".yaml")
    assert tf.tenant.currency == "RUB"


def test_coffee_chain_values() -> None:
    tf = load_tenant_file(TENANTS / "coffee-chain.yaml")
    (program,) = tf.programs
    assert program.kind is ProgramKind.POINTS
    assert program.earning.rate_bps == 500
    assert program.earning.rounding is Rounding.DOWN
    assert program.redemption.max_share_bps == 3000
    assert program.redemption.point_value == 100
    assert program.pending_days == 14 and program.expiry_days == 365
    assert program.activation is Activation.FIRST_PURCHASE
    assert {s.region for s in tf.stores} == {"Moscow", "Saint Petersburg"}
    assert len(tf.stores) == 4


def test_fuel_network_values() -> None:
    tf = load_tenant_file(TENANTS / "fuel-network.yaml")
    points, fleet = tf.programs
    assert points.kind is ProgramKind.POINTS and "tobacco" in points.earning.excluded_categories
    assert fleet.kind is ProgramKind.DISCOUNT and fleet.discount.percent_bps == 250
    assert set(fleet.store_ids) < {s.id for s in tf.stores}
    assert len({s.region for s in tf.stores}) >= 3


def test_city_coalition_values() -> None:
    tf = load_tenant_file(TENANTS / "city-coalition.yaml")
    partners = {p.id for p in tf.tenant.partners}
    assert len(partners) == 2
    assert {s.partner_id for s in tf.stores} == partners
    assert len(tf.programs) == 1 and tf.programs[0].store_ids == []
    assert tf.tenant.timezone == "Asia/Yekaterinburg"


def test_yaml_dates_become_strings(tmp_path: Path) -> None:
    data = example()
    data["programs"][0]["description"] = "placeholder"
    text = yaml.safe_dump(data).replace("description: placeholder", "description: 2024-03-01")
    tf = load_tenant_file(write(tmp_path, text))
    assert tf.programs[0].description == "2024-03-01"


# --- mistakes, each with the file and the exact field ------------------------------------


def test_unknown_field(tmp_path: Path) -> None:
    data = example()
    data["programs"][0]["earning"]["rate_percent"] = 5
    (problem,) = problems(write(tmp_path, data))
    assert problem == ("programs[0].earning.rate_percent: unknown field (check the spelling; see the comments in "
                       "tenants/*.yaml for the allowed fields)")


def test_float_where_int_expected(tmp_path: Path) -> None:
    data = example()
    data["programs"][0]["earning"]["rate_bps"] = 5.5
    data["programs"][0]["redemption"]["max_share_bps"] = 3000.0  # even a whole float: no floats near money
    assert problems(write(tmp_path, data)) == [
        "programs[0].earning.rate_bps: Input should be a valid integer (got 5.5)",
        "programs[0].redemption.max_share_bps: Input should be a valid integer (got 3000.0)",
    ]


def test_string_number_and_bad_enum(tmp_path: Path) -> None:
    data = example()
    data["stores"][1]["active"] = "yes"
    data["tenant"]["plan"] = "gold"
    data["programs"][0]["pending_days"] = "14"
    assert problems(write(tmp_path, data)) == [
        "tenant.plan: Input should be 'basic', 'standard' or 'premium' (got \"gold\")",
        "programs[0].pending_days: Input should be a valid integer (got \"14\")",
        "stores[1].active: Input should be a valid boolean (got \"yes\")",
    ]


def test_missing_field_and_model_rule(tmp_path: Path) -> None:
    data = example("fuel-network.yaml")
    del data["stores"][0]["name"]
    data["programs"][1]["discount"]["percent_bps"] = 0
    assert problems(write(tmp_path, data)) == [
        "programs[1]: a discount program needs discount.percent_bps > 0 or tiers with discount_bps",
        "stores[0].name: required field is missing",
    ]


def test_store_references_unknown_partner(tmp_path: Path) -> None:
    data = example("city-coalition.yaml")
    data["stores"][2]["partner_id"] = "kino-volga"
    assert problems(write(tmp_path, data)) == [
        "stores[2].partner_id: unknown partner 'kino-volga' (tenant.partners: bukva-books, kino-ural)",
    ]


def test_program_names_unknown_store(tmp_path: Path) -> None:
    data = example("fuel-network.yaml")
    data["programs"][1]["store_ids"] = ["m10-tver-160km", "m11-moscow-89km", "m8-yaroslavl-250km", "nowhere"]
    assert problems(write(tmp_path, data)) == [
        "programs[1].store_ids[1]: unknown store 'm11-moscow-89km' (not in the file's stores)",
        "programs[1].store_ids[3]: unknown store 'nowhere' (not in the file's stores)",
    ]


def test_reference_problems_listed_with_field_problems(tmp_path: Path) -> None:
    """The models stop before cross-checks when a field is wrong; the file still gets every problem at once."""
    data = example("city-coalition.yaml")
    data["stores"][0]["partner_id"] = "nobody"
    data["stores"][1]["id"] = "kino-passage"
    data["programs"][0]["earning"]["rate_bps"] = -1
    assert problems(write(tmp_path, data)) == [
        "programs[0].earning.rate_bps: Input should be greater than or equal to 0 (got -1)",
        "stores[0].partner_id: unknown partner 'nobody' (tenant.partners: bukva-books, kino-ural)",
        "stores[2].id: duplicate store id 'kino-passage' (first at stores[1])",
    ]


def test_bad_slug_reserved_id_and_timezone(tmp_path: Path) -> None:
    data = example()
    data["tenant"]["id"] = "admin"
    data["tenant"]["timezone"] = "Europe/Atlantis"
    data["stores"][0]["id"] = "Msk Tverskaya"
    found = sorted(problems(write(tmp_path, data)))
    assert len(found) == 3
    assert found[0].startswith("stores[0].id: String should match pattern")
    assert found[0].endswith('(got "Msk Tverskaya")')
    assert found[1:] == ["tenant.id: 'admin' is reserved", "tenant.timezone: unknown time zone 'Europe/Atlantis'"]


def test_bad_yaml_syntax_has_line_and_column(tmp_path: Path) -> None:
    text = "agency:\n  id: demo-agency\n  name: Demo\ntenant:\n  id: [unclosed\n  name: X\n"
    (problem,) = problems(write(tmp_path, text))
    assert problem.startswith("line 6, column 7: invalid YAML:")


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    text = (TENANTS / "coffee-chain.yaml").read_text(encoding="utf-8").replace(
        "  plan: standard\n", "  plan: standard\n  plan: premium\n")
    (problem,) = problems(write(tmp_path, text))
    assert problem.startswith("line ") and "found duplicate key 'plan'" in problem


@pytest.mark.parametrize(("text", "got"), [("", "empty"), ("- a\n- b\n", "list"), ("just text\n", "str")])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, got: str) -> None:
    assert problems(write(tmp_path, text)) == [
        f"(top level): must be a mapping with agency, tenant, programs and stores (got {got})"
    ]


def test_unreadable_file(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path / "missing.yaml")
    assert problem.startswith("cannot read file:") and "No such file" in problem


def test_no_programs(tmp_path: Path) -> None:
    data = example()
    data["programs"] = []
    assert problems(write(tmp_path, data)) == ["programs: List should have at least 1 item after validation, not 0"]


# --- the command line ------------------------------------------------------------------


def test_cli_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", str(TENANTS)]) == 0
    out = capsys.readouterr().out
    for name in EXAMPLES:
        assert f"{TENANTS / name}: ok" in out


def test_cli_validate_reports_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad_type = example()
    bad_type["programs"][0]["expiry_days"] = 1.5
    first = write(tmp_path, bad_type, "a.yaml")
    second = write(tmp_path, "tenant: [\n", "b.yaml")
    assert cli.main(["validate", str(first), str(second), str(TENANTS / "fuel-network.yaml")]) == 1
    captured = capsys.readouterr()
    assert f"{first}: programs[0].expiry_days: Input should be a valid integer (got 1.5)" in captured.err
    assert f"{second}: line 2, column 1: invalid YAML:" in captured.err
    assert f"{TENANTS / 'fuel-network.yaml'}: ok" in captured.out


def test_cli_validate_same_tenant_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = write(tmp_path, example(), "copy.yaml")
    assert cli.main(["validate", str(TENANTS / "coffee-chain.yaml"), str(copy)]) == 1
    assert (f"{copy}: tenant.id: tenant 'coffee-chain' is also defined in {TENANTS / 'coffee-chain.yaml'}"
            in capsys.readouterr().err)


def test_cli_apply_invalid_file_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Invalid input stops `apply` before any AWS module is even needed."""
    bad = example()
    bad["stores"][0]["partner_id"] = "ghost"
    path = write(tmp_path, bad)
    assert cli.main(["apply", str(TENANTS / "fuel-network.yaml"), str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: stores[0].partner_id: unknown partner 'ghost' (tenant.partners: none)" in err
    assert "nothing applied" in err


def test_cli_validate_subprocess_needs_no_aws(tmp_path: Path) -> None:
    """Exit codes as CI sees them, with no credentials or region and no AWS module loaded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"  # anything that tried to connect would fail
    check = ("import sys, runpy; sys.argv = ['cli', 'validate', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('chalicelib.cli', run_name='__main__')\n"
             "except SystemExit as e:\n"
             "    loaded = [m for m in sys.modules if m.split('.')[0] in ('boto3', 'pynamodb')]\n"
             "    assert not loaded, loaded\n    raise\n")
    ok = subprocess.run([sys.executable, "-c", check, str(TENANTS)], cwd=ROOT, env=env, capture_output=True,
                        text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count(": ok (tenant ") == 3

    bad = write(tmp_path, "agency: {id: x}\n")
    failed = subprocess.run([sys.executable, "-m", "chalicelib.cli", "validate", str(bad)], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=False)
    assert failed.returncode == 1
    assert f"{bad}: agency.name: required field is missing" in failed.stderr
    assert f"{bad}: tenant: required field is missing" in failed.stderr

    usage = subprocess.run([sys.executable, "-m", "chalicelib.cli", "validate"], cwd=ROOT, env=env,
                           capture_output=True, text=True, check=False)
    assert usage.returncode == 2
