"""Schema fuzzing: schemathesis against the served `/v1/openapi.json` of the real local stack over HTTP.

Every operation of the document is called with generated input and a key of a role it allows (drawn per
example among its `x-roles`), and every answer must pass schemathesis's `not_a_server_error`,
`response_schema_conformance`, `status_code_conformance` and `content_type_conformance`, and every error
must be exactly `{"error": {code, message, details, request_id}}` with the request id of the answer.

Path parameters are sometimes generated and sometimes the ids of seeded resources (a card, its customer,
the tenant's program and store, a throwaway tenant for the agency routes), so the fuzzer reaches the
handlers and not only their 404s. Nothing here can take the fuzzer's own keys away: key ids are always
generated (a random key id never names a real key) and tenant deletion is left out (item 1's isolation
sweep and tests/e2e/test_local_stack.py cover it). Deterministic (`derandomize`), bounded by
`max_examples`, no shrinking (each failure is reported with its curl reproduction instead).
"""

from __future__ import annotations

import copy
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import checks
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES
from schemathesis.generation import GenerationMode

from tests.e2e.conftest import LocalStack
from tests.e2e.test_people_http import admin_of, sign_in

CHECKS = [checks.not_a_server_error, checks.response_schema_conformance, checks.status_code_conformance,
          checks.content_type_conformance]
ERROR_KEYS = {"code", "message", "details", "request_id"}
POSITIVE_EXAMPLES = 3
NEGATIVE_EXAMPLES = 2
# The agency's path for deleting a tenant would purge the throwaway tenant the agency routes are fuzzed on, and
# signing out would end the session the fuzzer calls the session routes with (test_people*.py cover both).
LEFT_OUT = {("DELETE", "/v1/agency/tenants/{tenant_id}"), ("POST", "/v1/auth/sign-out")}
PERSON = "person"
"""The stack's first admin, signed in: the credential of the routes only a person's session may call."""
PROGRAM, STORE, TARGET = "zerno-points", "msk-tverskaya", "fuzz-target"


@dataclass
class Sweep:
    """What one pass over every operation saw: statuses per operation, and the failures (first per operation)."""

    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    failures: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def fail(self, label: str, message: str) -> None:
        self.failures.setdefault(label, message[:2000])

    def report(self) -> str:
        return "\n\n".join(f"== {label}\n{message}" for label, message in sorted(self.failures.items()))


@dataclass
class Fuzz:
    stack: LocalStack
    secrets: dict[str, str]
    ids: dict[str, str]
    schema: Any

    person: dict[str, str] = field(default_factory=dict)

    def headers(self, role: str | None) -> dict[str, str]:
        if role == PERSON:
            return self.person
        return {"Authorization": f"Bearer {self.secrets[role]}"} if role else {}


def _created(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    """A stack of its own without request limits (a 429 is documented but would starve the sweep), seeded."""
    stack = LocalStack(tmp_path_factory.mktemp("fuzz") / "state")
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("LOCAL_RATE_LIMITS", "0")
            stack.start()
        secrets = {role: stack.key(role, "coffee-chain" if role in ("pos", "tenant_admin") else None)["secret"]
                   for role in ("platform", "agency", "tenant_admin", "pos")}
        support = stack.request("POST", "/v1/keys", secrets["tenant_admin"],
                                json={"role": "support", "name": "schema fuzz"})
        secrets["support"] = _created(support)["secret"]
        card = _created(stack.request("POST", "/v1/cards", secrets["pos"], json={
            "program_id": PROGRAM, "customer": {"phone": "+79161234567", "first_name": "Фаззер"}}))
        agency = stack.key("agency")
        _created(stack.request("POST", "/v1/agency/tenants", agency["secret"], json={
            "tenant_id": TARGET, "name": "Fuzz target", "currency": "RUB", "timezone": "Europe/Moscow",
            "program": {"id": PROGRAM, "name": "Fuzz points", "earning": {"rate_bps": 500}},
            "stores": [{"id": STORE, "name": "Fuzz store", "region": "moscow"}]}))
        ids = {"number": card["number"], "customer_id": card["customer_id"], "program_id": PROGRAM,
               "store_id": STORE, "tenant_id": TARGET, "agency_id": agency["agency_id"],
               "coalition_id": "city-coalition"}
        # Our keys, not generated `Authorization` values: the sweep is about the routes, not the authorizer.
        # A body past the route's size limit is refused with 413 before any parsing: a rejection too.
        rejected = [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]
        config = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False},
                                                "checks": {"negative_data_rejection": {
                                                    "expected-statuses": rejected}}})
        schema = schemathesis.openapi.from_url(f"{stack.url}/v1/openapi.json", config=config)
        admin = admin_of(stack)
        person, _ = sign_in(stack, admin["email"], admin["password"], admin["mfa_secret"], set())
        yield Fuzz(stack, secrets, ids, schema, person.headers())
    finally:
        stack.stop()


def _error_shape(status: int, content: bytes, request_id: str | None) -> str | None:
    """Why an error answer is not exactly our documented shape with the answer's request id, or None."""
    if status < 400:
        return None
    try:
        body = json.loads(content)
    except ValueError:
        return f"{status} answer is not JSON: {content[:200]!r}"
    error = body.get("error") if isinstance(body, dict) else None
    if set(body) != {"error"} or not isinstance(error, dict) or set(error) != ERROR_KEYS:
        return f"{status} answer is not the error shape: {content[:300]!r}"
    if not (isinstance(error["code"], str) and error["code"] and isinstance(error["message"], str)
            and isinstance(error["details"], list)):
        return f"{status} error has wrong field types: {content[:300]!r}"
    if error["request_id"] != request_id:
        return f"request_id {error['request_id']!r} != X-Request-Id {request_id!r}"
    return None


def _fuzz_operation(fuzz: Fuzz, sweep: Sweep, session: requests.Session, op: Any, mode: GenerationMode,
                    max_examples: int) -> None:
    label = op.label
    sessions_only = [{"sessionToken": [], "sessionCookie": []}] == op.definition.raw.get("security")
    roles = [PERSON] if sessions_only else [r for r in op.definition.raw["x-roles"] if r != "public"] or [None]
    known = {p.name: fuzz.ids[p.name] for p in op.path_parameters if p.name in fuzz.ids}
    cases = op.as_strategy(generation_mode=mode)
    if known:
        cases = st.one_of(cases, op.as_strategy(generation_mode=mode, path_parameters=known))

    @settings(max_examples=max_examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=cases, role=st.sampled_from(roles))
    def call(case: Any, role: str | None) -> None:
        try:
            response = case.call(session=session, headers=fuzz.headers(role), timeout=30)
        except requests.RequestException as exc:
            sweep.fail(label, f"request failed: {exc!r}")
            return
        sweep.statuses[label][response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS + ([checks.negative_data_rejection]
                                                               if mode is GenerationMode.NEGATIVE else []))
        except BaseExceptionGroup as failures:
            sweep.fail(label, f"as {role}: {failures}")
        shape = _error_shape(response.status_code, response.content,
                             next(iter(response.headers.get("x-request-id") or []), None))
        if shape:
            sweep.fail(label, f"as {role}: {shape}\n{case.as_curl_command()}")

    try:
        call()
    except Unsatisfiable:
        sweep.fail(label, "no input could be generated")


def _negatable(op: Any) -> bool:
    """Whether invalid input can be generated: a body or a query string (a path parameter is any string)."""
    raw = op.definition.raw
    return "requestBody" in raw or any(p["in"] == "query" for p in raw.get("parameters", []))


def _sweep(fuzz: Fuzz, mode: GenerationMode, max_examples: int) -> Sweep:
    sweep = Sweep()
    session = requests.Session()
    for result in fuzz.schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) in LEFT_OUT or (mode is GenerationMode.NEGATIVE and not _negatable(op)):
            sweep.skipped.append(op.label)
        else:
            _fuzz_operation(fuzz, sweep, session, op, mode, max_examples)
    return sweep


def _unhandled(stack: LocalStack) -> list[str]:
    """The stack's own record of every 500: its `unhandled error` log lines, route and exception."""
    found = []
    for line in stack.log().splitlines():
        if '"unhandled error"' in line:
            entry = json.loads(line)
            found.append(f"{entry.get('route')}: {entry.get('exception', '')[-600:]}")
    return found


def test_every_operation_answers_valid_input_as_documented(fuzz: Fuzz) -> None:
    sweep = _sweep(fuzz, GenerationMode.POSITIVE, POSITIVE_EXAMPLES)
    assert not sweep.failures, f"{len(sweep.failures)} operations failed:\n{sweep.report()}"
    assert not _unhandled(fuzz.stack)
    operations = len(list(fuzz.schema.get_all_operations()))
    assert sorted(sweep.skipped) == ["DELETE /v1/agency/tenants/{tenant_id}", "POST /v1/auth/sign-out"]
    assert len(sweep.statuses) == operations - 2, "every other operation was called"
    succeeded = {label for label, seen in sweep.statuses.items() if any(200 <= s < 300 for s in seen)}
    # The run reaches the handlers, not only the refusals: reads, the till, the admin and agency routes.
    assert len(succeeded) >= 55, sorted(sweep.statuses)
    assert {"GET /v1/cards/{number}", "GET /v1/customers/{customer_id}", "GET /v1/stores/{store_id}",
            "GET /v1/agency/tenants/{tenant_id}", "GET /v1/platform/agencies/{agency_id}"} <= succeeded
    assert not any(500 in seen for seen in sweep.statuses.values())


def test_every_operation_refuses_invalid_input_as_documented(fuzz: Fuzz) -> None:
    sweep = _sweep(fuzz, GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)
    assert not sweep.failures, f"{len(sweep.failures)} operations failed:\n{sweep.report()}"
    assert not _unhandled(fuzz.stack)
    negatable = [op.ok() for op in fuzz.schema.get_all_operations() if _negatable(op.ok())]
    assert len(sweep.statuses) == len(negatable) - 1 >= 90, "every operation with a body or a query string"
    # Parsing comes before any lookup or rule: invalid input is a 400 whatever the ids. A 404 (or a 200 of a
    # list) is a "negative" case the API reads as valid: a query key repeated (an array) of which it takes one
    # value, then finds no such id (or lists). A body past the route's size limit is a 413 before parsing.
    # A sessions-only route for a role the sweep's person (the platform admin) lacks refuses it (403) first.
    operations = {f"{op.ok().method.upper()} {op.ok().path}": op.ok() for op in fuzz.schema.get_all_operations()}
    unexpected = {}
    for label, seen in sweep.statuses.items():
        raw = operations[label].definition.raw
        allowed = {400, 404}
        allowed |= {413} if "requestBody" in raw else set()
        allowed |= {200} if label.startswith("GET ") else set()
        allowed |= {403} if raw.get("security") == [{"sessionToken": [], "sessionCookie": []}] and \
            "platform" not in raw["x-roles"] else set()
        if set(seen) - allowed:
            unexpected[label] = dict(seen)
    statuses = sum(sweep.statuses.values(), Counter())
    assert not unexpected and statuses[400] >= 0.9 * statuses.total(), (statuses, unexpected)


def _mutated(fuzz: Fuzz, edit: Any) -> Any:
    document = copy.deepcopy(fuzz.schema.raw_schema)
    edit(document)
    return schemathesis.openapi.from_dict(document)


def test_the_checks_do_fail_on_an_answer_that_differs_from_the_document(fuzz: Fuzz) -> None:
    """Guards the sweep itself: the same checks, on a document made to disagree with the served answers."""
    whoami = ("/v1/whoami", "GET")

    def require_unknown_field(doc: dict[str, Any]) -> None:
        doc["components"]["schemas"]["WhoAmI"]["required"].append("not_in_the_answer")

    def undocument_200(doc: dict[str, Any]) -> None:
        del doc["paths"]["/v1/whoami"]["get"]["responses"]["200"]

    def error_without_request_id(doc: dict[str, Any]) -> None:
        doc["components"]["schemas"]["ErrorInfo"]["properties"]["request_id"] = {"type": "null"}

    for edit, key, expected in ((require_unknown_field, "pos", "not_in_the_answer"),
                                (undocument_200, "pos", "Undocumented"),
                                (error_without_request_id, None, "request_id")):
        operation = _mutated(fuzz, edit)[whoami[0]][whoami[1]]
        case = operation.Case()
        response = case.call(base_url=fuzz.stack.url, headers=fuzz.headers(key), timeout=30)
        with pytest.raises(BaseExceptionGroup) as failed:
            case.validate_response(response, checks=CHECKS)
        assert expected in str(failed.value), str(failed.value)


def test_the_error_shape_check_rejects_other_shapes() -> None:
    ok = {"code": "x", "message": "m", "details": [], "request_id": "r-1"}
    for body, problem in (({"message": "x"}, "not the error shape"),
                          ({"error": {**ok, "extra": 1}}, "not the error shape"),
                          ({"error": {k: v for k, v in ok.items() if k != "details"}}, "not the error shape"),
                          ({"error": {**ok, "details": None}}, "wrong field types"),
                          ({"error": {**ok, "request_id": "r-2"}}, "'r-2' != X-Request-Id 'r-1'")):
        assert problem in (_error_shape(404, json.dumps(body).encode(), "r-1") or ""), body
    assert _error_shape(404, b"<html>", "r-1") == "404 answer is not JSON: b'<html>'"
    assert _error_shape(404, json.dumps({"error": ok}).encode(), "r-1") is None
    assert _error_shape(200, b"[]", None) is None
