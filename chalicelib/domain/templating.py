"""Message templates: Jinja2 in a locked-down sandbox, validated when saved, rendered within hard bounds.

Tenant admins write the templates, so a template is untrusted code. The
`ImmutableSandboxedEnvironment` stops attribute escapes (`''.__class__...`);
on top of it everything a template can reach is a whitelist: the variables of
`ALLOWED_VARIABLES`, a few filters and string methods that cannot grow a
value, and a `range` of at most `MAX_RANGE` items. No macros, includes or
recursive loops, so the only repetition is a `for` loop, and every loop's
iterable is wrapped (an AST rewrite before compiling) to count iterations
against a per-render budget and check the clock. Operators that can build a
huge value in one step (`*`, `**`, `+`, `%` on text, `~`) are intercepted and
bounded. Rendering goes through `generate()` and stops as soon as the output
exceeds its cap or the time budget is spent. Every failure at render time is a
`RenderError`, which fails that one message only.
"""

from __future__ import annotations

import contextvars
import functools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

Channel = Literal["sms", "email"]
Encoding = Literal["GSM-7", "UCS-2"]

ALLOWED_VARIABLES: frozenset[str] = frozenset({
    "first_name", "last_name", "balance", "tier", "expiring_points", "expiring_date", "coupon_code",
    "unsubscribe_url", "tenant_name", "extra",
})
"""What a template may use; `extra` is a mapping of campaign-specific values (`{{ extra.order_id }}`)."""

MAX_RANGE = 1000
MAX_ITERATIONS = 10_000
"""Loop iterations per render, all loops together: a mail template needs a handful."""
MAX_VALUE_CHARS = 20_000
"""The longest string one expression may build."""
MAX_INT_BITS = 256
MAX_EMAIL_BODY_BYTES = 20 * 1024
MAX_SUBJECT_CHARS = 300
MAX_SMS_SEGMENTS = 10
TIME_BUDGET_SECONDS = 0.5

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")
"""GSM 03.38 extension table: each costs two septets (escape + char) and is never split across segments."""

SAFE_FILTERS = ("upper", "lower", "title", "capitalize", "trim", "default", "d", "truncate", "int", "round", "abs",
                "length", "string", "urlencode", "e", "escape")
SAFE_STR_METHODS = frozenset({"upper", "lower", "title", "capitalize", "strip", "lstrip", "rstrip", "startswith",
                              "endswith", "isdigit"})
SAFE_LOOP_ATTRS = frozenset({"index", "index0", "revindex", "revindex0", "first", "last", "length", "depth",
                             "depth0", "previtem", "nextitem"})
FORBIDDEN_NODES: dict[type[nodes.Node], str] = {
    nodes.Macro: "macros are not allowed", nodes.CallBlock: "call blocks are not allowed",
    nodes.Include: "includes are not allowed", nodes.Import: "imports are not allowed",
    nodes.FromImport: "imports are not allowed", nodes.Extends: "template inheritance is not allowed",
    nodes.Block: "blocks are not allowed",
    nodes.AssignBlock: "block assignments ({% set %}...{% endset %}) are not allowed",
    nodes.FilterBlock: "filter blocks are not allowed",
}
_BUDGET_FN = "__loop_budget"
_CONCAT_FN = "__bounded_concat"


class RenderError(Exception):
    """A template could not be rendered for one recipient; that message fails, nothing else."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OverLimit(RenderError):
    """Rendering hit a cap (size, time, loop iterations, value size) or the sandbox stopped it.

    Unlike a value a recipient lacks, this does not depend on who receives
    the message, so a template that does it for the sample recipient is
    refused when saved (`trial_render`).
    """


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    body: str
    sms_segments: int | None
    encoding: Encoding | None
    html: str | None = None
    """E-mail only: the HTML alternative (domain.email_html), filled by the templates service."""


@dataclass(frozen=True)
class Problem:
    field: str
    issue: str


# --- SMS segments -------------------------------------------------------------------------

def sms_encoding(text: str) -> Encoding:
    return "GSM-7" if all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text) else "UCS-2"


def _segments(units: list[int], single: int, multi: int) -> int:
    """Segments for these indivisible units (septets per char, or UTF-16 units per code point)."""
    total = sum(units)
    if total == 0:
        return 0
    if total <= single:
        return 1
    count, used = 1, 0
    for unit in units:
        if used + unit > multi:
            count, used = count + 1, 0
        used += unit
    return count


def sms_segments(text: str) -> tuple[int, Encoding]:
    """How many SMS segments `text` takes: GSM-7 160 / 153 septets per segment, else UCS-2 70 / 67 units."""
    encoding = sms_encoding(text)
    if encoding == "GSM-7":
        return _segments([2 if ch in GSM_EXTENSION else 1 for ch in text], 160, 153), encoding
    return _segments([2 if ord(ch) > 0xFFFF else 1 for ch in text], 70, 67), encoding


# --- the sandbox --------------------------------------------------------------------------

@dataclass
class _Budget:
    deadline: float
    iterations: int = 0

    def tick(self) -> None:
        self.iterations += 1
        if self.iterations > MAX_ITERATIONS:
            raise SecurityError(f"loops ran more than {MAX_ITERATIONS} iterations")
        if self.iterations % 64 == 0:
            self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise SecurityError("rendering took too long")


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("template_budget", default=None)


def _current_budget() -> _Budget:
    budget = _budget.get()
    if budget is None:
        raise SecurityError("templates render only through templating.render")
    return budget


def _loop_budget(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = _current_budget()
    for item in iterable:
        budget.tick()
        yield item


def _too_heavy(value: Any) -> bool:
    """Whether printing `value` would exceed MAX_VALUE_CHARS; stops counting as soon as it does.

    Lists and dicts can hold many references to one long string (`[s, s, s]`),
    so their printed size is their items' total, not their length.
    """
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, bool | float | type(None)):
            total += 8
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, dict):
            total += 2
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2
            stack.extend(item)
        else:
            total += 16
        if total > MAX_VALUE_CHARS:
            return True
    return False


def _check_str(value: Any) -> Any:
    """Refuse a value that is too long to print or a number too large to compute with."""
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise SecurityError("a number too large was built")
    if isinstance(value, str | list | tuple | dict | set | frozenset) and _too_heavy(value):
        raise SecurityError(f"a value longer than {MAX_VALUE_CHARS} was built")
    return value


def _finalize(value: Any) -> Any:
    """What `{{ ... }}` prints: nothing for None, and never a container too large to print."""
    return "" if value is None else _check_str(value)


def _bounded_concat(parts: list[Any]) -> str:
    total = 0
    texts = []
    for part in parts:
        text = "" if part is None else str(_check_str(part))
        total += len(text)
        if total > MAX_VALUE_CHARS:
            raise SecurityError(f"a value longer than {MAX_VALUE_CHARS} was built")
        texts.append(text)
    return "".join(texts)


def _safe_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise SecurityError(f"range() is limited to {MAX_RANGE} items")
    return rng


def _bounded_filter(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for arg in args:
            _check_str(arg)
        return _check_str(fn(*args, **kwargs))

    return wrapper


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox with whitelists: anything not listed is refused, including `str.format`."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if isinstance(obj, str):
            return attr in SAFE_STR_METHODS
        if isinstance(obj, LoopContext):
            return attr in SAFE_LOOP_ATTRS
        return False

    def wrap_str_format(self, value: Any) -> None:
        return None

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(__obj, Undefined):
            str(__obj)
        allowed = __obj is _safe_range or __obj is _loop_budget or __obj is _bounded_concat or (
            isinstance(getattr(__obj, "__self__", None), str) and getattr(__obj, "__name__", "") in SAFE_STR_METHODS)
        if not allowed:
            raise SecurityError(f"calling {getattr(__obj, '__name__', type(__obj).__name__)!r} is not allowed")
        return _check_str(__context.call(__obj, *args, **kwargs))

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "%" and isinstance(left, str):
            raise SecurityError("string formatting with % is not allowed")
        if op == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    if len(seq) * max(times, 0) > MAX_VALUE_CHARS:
                        raise SecurityError(f"a value longer than {MAX_VALUE_CHARS} was built")
        if op == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
            if right * math.log2(abs(left)) > MAX_INT_BITS:
                raise SecurityError("a number too large was built")
        if op == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            if len(left) + len(right) > MAX_VALUE_CHARS:
                raise SecurityError(f"a value longer than {MAX_VALUE_CHARS} was built")
        return _check_str(self.binop_table[op](left, right))


def _environment(autoescape: bool = False) -> _Sandbox:
    env = _Sandbox(undefined=StrictUndefined, autoescape=autoescape, optimized=False, auto_reload=False,
                   finalize=_finalize)
    env.filters = {name: _bounded_filter(FILTERS[name]) for name in SAFE_FILTERS}
    env.globals = {"range": _safe_range, _BUDGET_FN: _loop_budget, _CONCAT_FN: _bounded_concat}
    return env


ENV = _environment()
HTML_ENV = _environment(autoescape=True)
"""The same sandbox for the HTML part of an e-mail: every printed value is HTML-escaped (`|safe` is not allowed)."""


# --- validation -------------------------------------------------------------------------

_CONST_OPS: dict[type[nodes.BinExpr], Callable[[int, int], int]] = {
    nodes.Add: lambda a, b: a + b, nodes.Sub: lambda a, b: a - b, nodes.Mul: lambda a, b: a * b,
    nodes.FloorDiv: lambda a, b: a // b,
}


def _const_int(node: nodes.Node) -> int | None:
    """An integer expression of constants, evaluated with bounded magnitudes; None if it is not one."""
    if isinstance(node, nodes.Const):
        return node.value if isinstance(node.value, int) and not isinstance(node.value, bool) else None
    if isinstance(node, nodes.Neg | nodes.Pos):
        value = _const_int(node.node)
        return None if value is None else (-value if isinstance(node, nodes.Neg) else value)
    if isinstance(node, nodes.BinExpr):
        left, right = _const_int(node.left), _const_int(node.right)
        if left is None or right is None:
            return None
        if isinstance(node, nodes.Pow):
            if right < 0 or (abs(left) > 1 and right * math.log2(abs(left)) > MAX_INT_BITS):
                return 1 << MAX_INT_BITS
            return int(left**right)  # right >= 0 here: an int (mypy types int ** int as Any)
        fn = _CONST_OPS.get(type(node))
        if fn is None or (isinstance(node, nodes.FloorDiv) and right == 0):
            return None
        return fn(left, right)
    return None


def _const_args(call: nodes.Call) -> list[int] | None:
    values = [_const_int(arg) for arg in call.args]
    return None if call.kwargs or any(v is None for v in values) else [v for v in values if v is not None]


def _unsafe_constructs(ast: nodes.Template) -> list[str]:
    issues: list[str] = []
    for node in ast.find_all(nodes.Node):
        for kind, why in FORBIDDEN_NODES.items():
            if isinstance(node, kind):
                issues.append(why)
        if isinstance(node, nodes.For) and node.recursive:
            issues.append("recursive loops are not allowed")
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            issues.append(f"access to {node.attr!r} is not allowed")
        if (isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const)
                and isinstance(node.arg.value, str) and node.arg.value.startswith("_")):
            issues.append(f"access to {node.arg.value!r} is not allowed")
        if isinstance(node, nodes.Filter | nodes.Test) and node.name is not None:
            known = ENV.filters if isinstance(node, nodes.Filter) else ENV.tests
            if node.name not in known:
                issues.append(f"{'filter' if isinstance(node, nodes.Filter) else 'test'} {node.name!r} is not allowed")
        if (isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr)
                and node.node.attr not in SAFE_STR_METHODS):
            issues.append(f"calling .{node.node.attr}() is not allowed")
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name == "range":
            args = _const_args(node)
            if args is not None:
                try:
                    _safe_range(*args)
                except SecurityError as exc:
                    issues.append(str(exc))
                except (TypeError, ValueError, OverflowError):
                    issues.append("range() needs integer arguments")
    return list(dict.fromkeys(issues))


def _parse(source: str) -> nodes.Template:
    return ENV.parse(source)


def check(field: str, source: str) -> list[Problem]:
    """What is wrong with one template field: a syntax error with its line, unknown variables, unsafe constructs."""
    try:
        return _check(field, source)
    except RecursionError:
        return [Problem(field, "the template is nested too deeply")]


def _check(field: str, source: str) -> list[Problem]:
    try:
        ast = _parse(source)
    except TemplateSyntaxError as exc:
        return [Problem(field, f"syntax error on line {exc.lineno}: {exc.message}")]
    problems = []
    unsafe = [Problem(field, f"not allowed in the sandbox: {issue}") for issue in _unsafe_constructs(ast)]
    try:
        unknown = sorted(meta.find_undeclared_variables(ast) - ALLOWED_VARIABLES)
    except TemplateSyntaxError as exc:
        return unsafe or [Problem(field, f"error on line {exc.lineno}: {exc.message}")]
    if unknown:
        problems.append(Problem(field, f"unknown variable(s): {', '.join(unknown)}; allowed: "
                                       f"{', '.join(sorted(ALLOWED_VARIABLES))}"))
    return problems + unsafe


def validate(channel: Channel, subject: str | None, body: str) -> list[Problem]:
    """Every problem of a template, by field (`subject`, `body`); empty when it may be saved."""
    problems: list[Problem] = []
    if channel == "email":
        problems.extend(check("subject", subject or ""))
    problems.extend(check("body", body))
    return problems


def variables_used(source: str) -> list[str]:
    try:
        return sorted(meta.find_undeclared_variables(_parse(source)) & ALLOWED_VARIABLES)
    except (TemplateError, RecursionError):
        return []


# --- rendering --------------------------------------------------------------------------

class _Rewrite(NodeTransformer):
    """Routes every loop through the budget and every `~` through the bounded concatenation."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Call(nodes.Name(_BUDGET_FN, "load"), [node.iter], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Call(nodes.Name(_CONCAT_FN, "load"), [nodes.List(node.nodes, lineno=node.lineno)], [], None,
                          None, lineno=node.lineno)


@functools.lru_cache(maxsize=512)
def _compiled(source: str, html: bool = False) -> Any:
    """The compiled template; refuses anything `check` would refuse, so a stored template is re-checked here."""
    problems = check("template", source)
    if problems:
        raise RenderError(problems[0].issue)
    env = HTML_ENV if html else ENV
    ast = _Rewrite().visit(_parse(source))
    ast.set_environment(env)
    return env.from_string(ast)


def _render_one(source: str, context: Mapping[str, Any], max_chars: int, budget: _Budget, what: str,
                html: bool = False) -> str:
    """Render through `generate()`, stopping as soon as the output passes `max_chars` or the time is up."""
    out: list[str] = []
    size = 0
    token = _budget.set(budget)
    try:
        template = _compiled(source, html)
        for chunk in template.generate(context):
            size += len(chunk)
            if size > max_chars:
                raise OverLimit(f"the {what} is longer than {max_chars} characters")
            budget.check_time()
            out.append(chunk)
    except RenderError:
        raise
    except SecurityError as exc:
        raise OverLimit(f"the {what} was stopped by the sandbox: {exc}") from None
    except TemplateError as exc:
        raise RenderError(f"the {what} could not be rendered: {exc.message or type(exc).__name__}") from None
    except (RecursionError, MemoryError):
        raise OverLimit(f"the {what} used too many resources") from None
    except (ArithmeticError, TypeError) as exc:
        raise RenderError(f"the {what} could not be rendered: {type(exc).__name__}: {str(exc)[:200]}") from None
    except Exception as exc:
        raise RenderError(f"the {what} could not be rendered: {type(exc).__name__}") from None
    finally:
        _budget.reset(token)
    return "".join(out)


def render(channel: Channel, subject: str | None, body: str, variables: Mapping[str, Any], *,
           time_budget: float = TIME_BUDGET_SECONDS) -> Rendered:
    """One message for one recipient, or RenderError (sandbox violation, timeout, too large, undefined value)."""
    context = {name: variables.get(name) for name in ALLOWED_VARIABLES}
    context["extra"] = dict(variables.get("extra") or {})
    budget = _Budget(deadline=time.monotonic() + time_budget)
    if channel == "email":
        if subject is None:
            raise RenderError("an e-mail template needs a subject")
        rendered_subject = " ".join(_render_one(subject, context, MAX_SUBJECT_CHARS, budget, "subject").split())
        text = _render_one(body, context, MAX_EMAIL_BODY_BYTES, budget, "body")
        if len(text.encode()) > MAX_EMAIL_BODY_BYTES:
            raise OverLimit(f"the body is larger than {MAX_EMAIL_BODY_BYTES} bytes")
        if not rendered_subject or not text.strip():
            raise RenderError("the rendered message is empty")
        return Rendered(subject=rendered_subject, body=text, sms_segments=None, encoding=None)
    text = _render_one(body, context, MAX_SMS_SEGMENTS * 153, budget, "body").strip()
    if not text:
        raise RenderError("the rendered message is empty")
    segments, encoding = sms_segments(text)
    if segments > MAX_SMS_SEGMENTS:
        raise OverLimit(f"the SMS takes {segments} segments; at most {MAX_SMS_SEGMENTS} are allowed")
    return Rendered(subject=None, body=text, sms_segments=segments, encoding=encoding)


@dataclass(frozen=True)
class Part:
    """One more field of a message rendered beside its body (an e-mail block's text, label or link)."""

    field: str
    """Where a problem is reported, e.g. `blocks.2.text`."""
    source: str
    html: bool
    """True: printed values are HTML-escaped (text for the HTML part); False: plain (a link, checked after)."""
    max_chars: int = MAX_EMAIL_BODY_BYTES


def _context(variables: Mapping[str, Any]) -> dict[str, Any]:
    context = {name: variables.get(name) for name in ALLOWED_VARIABLES}
    context["extra"] = dict(variables.get("extra") or {})
    return context


def render_parts(parts: Sequence[Part], variables: Mapping[str, Any], *,
                 time_budget: float = TIME_BUDGET_SECONDS) -> list[str]:
    """Several fields of one message for one recipient, sharing one time and loop budget; RenderError names the
    failing field in its message (`blocks.2.text: ...`)."""
    context = _context(variables)
    budget = _Budget(deadline=time.monotonic() + time_budget)
    out = []
    for part in parts:
        try:
            out.append(_render_one(part.source, context, part.max_chars, budget, part.field, part.html))
        except OverLimit as err:
            raise OverLimit(f"{part.field}: {err.message}") from None
        except RenderError as err:
            raise RenderError(f"{part.field}: {err.message}") from None
    return out


# --- the trial render at save ---------------------------------------------------------------

class _SampleExtra(dict[str, Any]):
    """`extra` of the sample recipient: every key a campaign might pass has a value, so every branch renders."""

    def __missing__(self, key: str) -> str:
        return "sample"


SAMPLE_VARIABLES: Mapping[str, Any] = {
    "first_name": "Anna", "last_name": "Ivanova", "balance": 1250, "tier": "Gold", "expiring_points": 300,
    "expiring_date": "2026-12-31", "coupon_code": "SAMPLE-2026", "unsubscribe_url": "https://example.com/u/sample",
    "tenant_name": "Sample Coffee",
}
"""A representative recipient (the shapes mail_context gives), for rendering a template before it is saved."""


def trial_render(channel: Channel, subject: str | None, body: str, *,
                 time_budget: float = TIME_BUDGET_SECONDS) -> list[Problem]:
    """The field that cannot render within the run-time limits for the sample recipient, if any.

    Run at save, after `validate`: a template that builds a huge number or
    string, loops past the budget or outgrows its message would fail for
    every recipient, so it is refused then rather than at send. Values a
    recipient may lack (an undefined `extra` key, a type mismatch) are not
    judged here: they depend on the recipient.
    """
    context: dict[str, Any] = {name: SAMPLE_VARIABLES.get(name) for name in ALLOWED_VARIABLES}
    context["extra"] = _SampleExtra()
    budget = _Budget(deadline=time.monotonic() + time_budget)
    fields = [("subject", subject or "", MAX_SUBJECT_CHARS)] if channel == "email" else []
    fields.append(("body", body, MAX_EMAIL_BODY_BYTES if channel == "email" else MAX_SMS_SEGMENTS * 153))
    for field, source, cap in fields:
        try:
            text = _render_one(source, context, cap, budget, field)
            if field == "body" and channel == "email" and len(text.encode()) > MAX_EMAIL_BODY_BYTES:
                raise OverLimit(f"the body is larger than {MAX_EMAIL_BODY_BYTES} bytes")
            if field == "body" and channel == "sms" and (segments := sms_segments(text.strip())[0]) > MAX_SMS_SEGMENTS:
                raise OverLimit(f"the SMS takes {segments} segments; at most {MAX_SMS_SEGMENTS} are allowed")
        except OverLimit as err:
            return [Problem(field, err.message)]
        except RenderError:
            continue
    return []


def trial_render_parts(parts: Sequence[Part], *, time_budget: float = TIME_BUDGET_SECONDS) -> list[Problem]:
    """`trial_render` for the extra fields of a message (e-mail blocks), each against the sample recipient."""
    context: dict[str, Any] = {name: SAMPLE_VARIABLES.get(name) for name in ALLOWED_VARIABLES}
    context["extra"] = _SampleExtra()
    budget = _Budget(deadline=time.monotonic() + time_budget)
    for part in parts:
        try:
            _render_one(part.source, context, part.max_chars, budget, part.field, part.html)
        except OverLimit as err:
            return [Problem(part.field, err.message)]
        except RenderError:
            continue
    return []
