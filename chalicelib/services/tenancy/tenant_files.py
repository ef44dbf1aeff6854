"""Programs as code: `tenants/*.yaml` validated with the API's own models and applied idempotently.

An agency keeps each client's programs and stores in a reviewed YAML file
instead of clicking them together. Applying a file creates what is missing,
updates what differs and never deletes: removing a store from the file must
not silently strip a live program of its geography, so leftovers are only
reported. Validation needs no AWS at all; the storage and provisioning
modules are imported only when a file is applied.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from chalicelib.schemas.keys import KeyCreated
from chalicelib.schemas.tenancy import ProgramSpec, StoreSpec, TenantFile

# Provisioning a tenant writes the tenant, its first program, its stores, two
# keys and an audit entry in one DynamoDB transaction (100 items at most).
MAX_STORES_AT_PROVISION = 90

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
NOT_IN_FILE = "not in file (left unchanged)"

T = TypeVar("T")


class TenantFileError(Exception):
    """A tenant file that cannot be used; the message lists every problem, one `<path>: <where>: <issue>` a line."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = list(problems)
        super().__init__("\n".join(f"{self.path}: {p}" for p in self.problems))


class TenantApplyInterrupted(Exception):
    """Applying stopped half-way: carries what was already written, including keys shown only now."""

    def __init__(self, report: ApplyReport, cause: BaseException) -> None:
        self.report = report
        self.cause = cause
        super().__init__(f"{report.path}: applying stopped after {report.writes} write(s): {cause}")


@dataclass
class ApplyReport:
    """What applying one file did, one line per entity, plus the keys minted on the way (shown once)."""

    path: Path
    agency_id: str = ""
    tenant_id: str = ""
    lines: list[str] = field(default_factory=list)
    created_keys: list[KeyCreated] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    not_in_file: int = 0

    @property
    def writes(self) -> int:
        return self.created + self.updated

    def record(self, entity: str, outcome: str, note: str = "") -> None:
        counter = {CREATED: "created", UPDATED: "updated", UNCHANGED: "unchanged", NOT_IN_FILE: "not_in_file"}
        setattr(self, counter[outcome], getattr(self, counter[outcome]) + 1)
        self.lines.append(f"{entity}: {outcome}{f' ({note})' if note else ''}")

    def summary(self) -> str:
        return (f"{self.path}: {self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.not_in_file} not in file, {len(self.created_keys)} key(s) created")


# --- loading and validation -------------------------------------------------------

def load_tenant_file(path: Path) -> TenantFile:
    """Parse and validate one tenant file with the API's strict models (so YAML and API accept the same things)."""
    path = Path(path)
    raw = _read(path)
    if not isinstance(raw, dict):
        kind = "empty" if raw is None else type(raw).__name__
        problem = f"(top level): must be a mapping with agency, tenant, programs and stores (got {kind})"
        raise TenantFileError(path, [problem])
    try:
        # JSON text, not Python objects: exactly the API's strict-JSON path (enums from strings, no float
        # for int), and YAML dates become strings instead of being refused as date objects.
        return TenantFile.model_validate_json(json.dumps(raw, default=str))
    except ValidationError as exc:
        problems = []
        refs = _reference_problems(raw)
        for error in exc.errors():
            if not error["loc"] and refs:
                continue  # the precise reference problems below replace check_references' first-only message
            problems.append(f"{_field_path(error['loc'])}: {_issue(error)}")
        for problem in refs:
            if problem not in problems:
                problems.append(problem)
        raise TenantFileError(path, problems) from None


def check_files(tenant_files: dict[Path, TenantFile]) -> list[str]:
    """Problems between files applied together: one tenant in two files, one agency named two ways."""
    problems: list[str] = []
    tenants: dict[str, Path] = {}
    agencies: dict[str, tuple[str, Path]] = {}
    for path, tf in tenant_files.items():
        if tf.tenant.id in tenants:
            problems.append(f"{path}: tenant.id: tenant {tf.tenant.id!r} is also defined in {tenants[tf.tenant.id]}")
        tenants.setdefault(tf.tenant.id, path)
        name, first = agencies.setdefault(tf.agency.id, (tf.agency.name, path))
        if name != tf.agency.name:
            problems.append(f"{path}: agency.name: agency {tf.agency.id!r} is named {name!r} in {first}")
    return problems


# --- applying -----------------------------------------------------------------------

def preflight(path: Path, tenant_file: TenantFile) -> None:
    """Read-only checks that must pass before anything is written (so a refused file writes nothing)."""
    from chalicelib.storage import directory

    tenant = directory.get_tenant(tenant_file.tenant.id)
    if tenant is None:
        return
    problems = []
    if tenant.agency_id != tenant_file.agency.id:
        problems.append(f"tenant.id: tenant {tenant.tenant_id!r} belongs to agency {tenant.agency_id!r}, not "
                        f"{tenant_file.agency.id!r}; a tenant file never takes over another agency's tenant")
    elif tenant.status.value == "deleting":
        problems.append(f"tenant.id: tenant {tenant.tenant_id!r} is being deleted")
    if tenant.currency != tenant_file.tenant.currency and not problems:
        problems.append(f"tenant.currency: the tenant's balances are in {tenant.currency}; the currency cannot "
                        f"change after creation (file says {tenant_file.tenant.currency})")
    if problems:
        raise TenantFileError(path, problems)


def apply_tenant_file(path: Path, actor: str = "cli", *, tenant_file: TenantFile | None = None) -> ApplyReport:
    """Make the stored agency, tenant, programs and stores match the file; a second run writes nothing.

    Raises `TenantFileError` (nothing written) for an invalid file or a tenant
    of another agency, and `TenantApplyInterrupted` (carrying the partial report
    and any keys already minted) if a write fails half-way.
    """
    path = Path(path)
    tf = tenant_file if tenant_file is not None else load_tenant_file(path)
    preflight(path, tf)
    report = ApplyReport(path=path, agency_id=tf.agency.id, tenant_id=tf.tenant.id)
    try:
        _apply(tf, actor, report)
    except Exception as exc:
        if report.writes or report.created_keys:
            raise TenantApplyInterrupted(report, exc) from exc
        raise
    return report


# --- helpers --------------------------------------------------------------------------------------------

class _UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.safe_load` semantics, except that a key repeated in one mapping is an error, not a silent override."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable key: let the base constructor report it
            break
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark)
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml_problem(err: yaml.YAMLError) -> str:
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        problem = err.problem or err.context or "invalid YAML"
        context = f" ({err.context})" if err.context and err.problem else ""
        return f"{where}: invalid YAML: {problem}{context}"
    return f"YAML: invalid YAML: {err}"


def _field_path(loc: Iterable[int | str]) -> str:
    """Pydantic's ('programs', 0, 'earning', 'rate_bps') -> 'programs[0].earning.rate_bps'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _issue(error: Any) -> str:
    kind, msg = str(error["type"]), str(error["msg"])
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; see the comments in tenants/*.yaml for the allowed fields)"
    if kind == "missing":
        return "required field is missing"
    msg = msg.removeprefix("Value error, ")
    value = error.get("input")
    if kind != "value_error" and not isinstance(value, dict | list):
        msg += f" (got {_short(value)})"
    return msg


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _reference_problems(raw: dict[str, Any]) -> list[str]:
    """Where exactly `check_references` would fail, for every problem rather than the first one.

    Only consulted when the models already refused the file, so it can never
    reject a file the API would accept.
    """
    problems: list[str] = []
    found = raw.get("tenant")
    tenant: dict[str, Any] = found if isinstance(found, dict) else {}
    partners = {_text(p.get("id")) for p in _as_list(tenant.get("partners")) if isinstance(p, dict)}
    stores = _as_list(raw.get("stores"))
    first_store: dict[Any, int] = {}
    for i, store in enumerate(stores):
        if not isinstance(store, dict):
            continue
        sid = _text(store.get("id"))
        if isinstance(sid, str) and sid in first_store:
            problems.append(f"stores[{i}].id: duplicate store id {sid!r} (first at stores[{first_store[sid]}])")
        elif isinstance(sid, str):
            first_store[sid] = i
        partner = _text(store.get("partner_id"))
        if isinstance(partner, str) and partner and partner not in partners:
            known = ", ".join(sorted(str(p) for p in partners)) or "none"
            problems.append(f"stores[{i}].partner_id: unknown partner {partner!r} (tenant.partners: {known})")
    first_program: dict[Any, int] = {}
    for i, program in enumerate(_as_list(raw.get("programs"))):
        if not isinstance(program, dict):
            continue
        pid = _text(program.get("id"))
        if isinstance(pid, str) and pid in first_program:
            problems.append(f"programs[{i}].id: duplicate program id {pid!r} (first at programs[{first_program[pid]}])")
        elif isinstance(pid, str):
            first_program[pid] = i
        for j, sid in enumerate(_as_list(program.get("store_ids"))):
            sid = _text(sid)
            if isinstance(sid, str) and sid not in first_store:
                problems.append(f"programs[{i}].store_ids[{j}]: unknown store {sid!r} (not in the file's stores)")
    return problems


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TenantFileError(path, [f"cannot read file: {exc}"]) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506  (a SafeLoader subclass: as safe as safe_load)
    except yaml.YAMLError as exc:
        raise TenantFileError(path, [_yaml_problem(exc)]) from None


def _all_pages(list_page: Callable[[str, int, str | None], tuple[list[T], str | None]], owner: str) -> list[T]:
    items: list[T] = []
    cursor: str | None = None
    while True:
        page, cursor = list_page(owner, 200, cursor)
        items.extend(page)
        if not cursor:
            return items


def _provision_parts(tf: TenantFile) -> tuple[ProgramSpec, list[StoreSpec], bool]:
    """The program and stores provisioned with the tenant, and whether that program must be fixed up afterwards.

    Provisioning takes one program and at most 90 stores, and that program may
    only name stores created with it. Pick the first program whose stores fit;
    if none does, provision the first one archived and store-less (inert, never
    live with the wrong geography) and replace it once all stores exist.
    """
    for program in tf.programs:
        if len(program.store_ids) <= MAX_STORES_AT_PROVISION:
            needed = set(program.store_ids)
            stores = [s for s in tf.stores if s.id in needed]
            stores += [s for s in tf.stores if s.id not in needed][: MAX_STORES_AT_PROVISION - len(stores)]
            return program, stores, False
    first = tf.programs[0]
    inert = {**first.model_dump(mode="json"), "status": "archived", "store_ids": []}
    stand_in = ProgramSpec.model_validate_json(json.dumps(inert))
    return stand_in, tf.stores[:MAX_STORES_AT_PROVISION], True


def _spec_doc(entity: Any, spec_type: type[ProgramSpec | StoreSpec]) -> dict[str, Any]:
    doc: dict[str, Any] = entity.model_dump(mode="json", include=set(spec_type.model_fields))
    return doc


def _apply(tf: TenantFile, actor: str, report: ApplyReport) -> None:
    from chalicelib.services.tenancy import tenancy
    from chalicelib.storage import directory

    _apply_agency(tf, actor, report)
    tenant_id = tf.tenant.id
    reported: set[str] = set()  # entities already reported by provisioning
    stand_in: str | None = None  # a program provisioned inert, to be replaced by the file's version
    provisioned = _provision(tf, actor, report) if directory.get_tenant(tenant_id) is None else None
    if provisioned is None:
        _update_tenant_settings(tf, actor, report)
    else:
        program_id, store_ids, is_stand_in = provisioned
        if is_stand_in:
            stand_in = program_id
        else:
            reported.add(f"program#{program_id}")
        reported.update(f"store#{s}" for s in store_ids)

    # Stores first: programs may name them.
    stray_stores = _sync("store", tenant_id, tf.stores, _all_pages(directory.list_stores, tenant_id), StoreSpec,
                         tenancy.create_store, tenancy.replace_store, reported, None, actor, report)
    stray_programs = _sync("program", tenant_id, tf.programs, _all_pages(directory.list_programs, tenant_id),
                           ProgramSpec, tenancy.create_program, tenancy.replace_program, reported, stand_in,
                           actor, report)
    for entity in stray_programs + stray_stores:
        report.record(entity, NOT_IN_FILE)


def _sync(
    kind: str,
    tenant_id: str,
    specs: list[Any],
    existing_entities: list[Any],
    spec_type: type[ProgramSpec | StoreSpec],
    create: Callable[[str, Any, str], Any],
    replace: Callable[[str, Any, str], Any],
    reported: set[str],
    stand_in: str | None,
    actor: str,
    report: ApplyReport,
) -> list[str]:
    """Create what is missing, replace what differs; return the entities the file no longer lists."""
    existing = {e.id: e for e in existing_entities}
    for spec in specs:
        if f"{kind}#{spec.id}" in reported:
            continue
        entity = f"{kind} {tenant_id}/{spec.id}"
        current = existing.get(spec.id)
        if current is None:
            create(tenant_id, spec, actor)
            report.record(entity, CREATED)
        elif _spec_doc(current, spec_type) == spec.model_dump(mode="json"):
            report.record(entity, UNCHANGED)
        else:
            saved = replace(tenant_id, spec, actor)
            version = getattr(saved, "version", None)
            report.record(entity, CREATED if spec.id == stand_in else UPDATED,
                          f"version {version}" if version is not None else "")
    return [f"{kind} {tenant_id}/{entity_id}" for entity_id in sorted(set(existing) - {s.id for s in specs})]


def _apply_agency(tf: TenantFile, actor: str, report: ApplyReport) -> None:
    from chalicelib.errors import ApiError
    from chalicelib.schemas.tenancy import AgencyCreate
    from chalicelib.services.tenancy import tenancy
    from chalicelib.storage import directory

    entity = f"agency {tf.agency.id}"
    agency = directory.get_agency(tf.agency.id)
    if agency is None:
        try:
            provisioned = tenancy.create_agency(AgencyCreate(agency_id=tf.agency.id, name=tf.agency.name), actor)
        except ApiError as err:
            if err.code != "agency_exists":
                raise
            agency = directory.get_agency(tf.agency.id)  # created concurrently: fine, it is the same agency id
        else:
            report.created_keys.append(provisioned.key)
            report.record(entity, CREATED)
            return
    assert agency is not None
    note = "" if agency.name == tf.agency.name else f"stored name {agency.name!r} differs from the file; not renamed"
    report.record(entity, UNCHANGED, note)


def _provision(tf: TenantFile, actor: str, report: ApplyReport) -> tuple[str, list[str], bool] | None:
    """Create the tenant with one program and up to 90 stores in one transaction, as the API does.

    Returns (program id, store ids, whether the program is an inert stand_in),
    or None if the tenant appeared concurrently: it is then updated like any
    existing tenant, once checked to be ours.
    """
    from chalicelib.errors import ApiError
    from chalicelib.schemas.tenancy import TenantCreate
    from chalicelib.services.tenancy import tenancy

    program, stores, needs_fix_up = _provision_parts(tf)
    spec = TenantCreate(
        tenant_id=tf.tenant.id, name=tf.tenant.name, plan=tf.tenant.plan, currency=tf.tenant.currency,
        timezone=tf.tenant.timezone, partners=tf.tenant.partners, privacy=tf.tenant.privacy,
        branding=tf.tenant.branding, program=program,
        stores=stores,
    )
    try:
        provisioned = tenancy.provision_tenant(tf.agency.id, spec, actor)
    except ApiError as err:
        if err.code != "tenant_exists":
            raise
        preflight(report.path, tf)  # appeared concurrently: only carry on if it is ours
        return None
    report.created_keys.extend(provisioned.keys)
    report.record(f"tenant {tf.tenant.id}", CREATED)
    if not needs_fix_up:
        report.record(f"program {tf.tenant.id}/{program.id}", CREATED)
    for store in stores:
        report.record(f"store {tf.tenant.id}/{store.id}", CREATED)
    return program.id, [s.id for s in stores], needs_fix_up


def _update_tenant_settings(tf: TenantFile, actor: str, report: ApplyReport) -> None:
    from chalicelib.schemas.tenancy import TenantUpdate
    from chalicelib.services.tenancy import tenancy
    from chalicelib.storage import directory

    entity = f"tenant {tf.tenant.id}"
    tenant = directory.get_tenant(tf.tenant.id)
    assert tenant is not None
    editable = {"name", "plan", "timezone", "language", "partners", "privacy", "branding"}
    wanted = tf.tenant.model_dump(mode="json", include=editable)
    current = tenant.model_dump(mode="json", include=editable)
    changed = sorted(k for k in wanted if wanted[k] != current[k])
    if not changed:
        report.record(entity, UNCHANGED)
        return
    update = TenantUpdate(**{k: getattr(tf.tenant, k) for k in changed})
    tenancy.update_tenant(tf.agency.id, tf.tenant.id, update, actor)
    report.record(entity, UPDATED, ", ".join(changed))
