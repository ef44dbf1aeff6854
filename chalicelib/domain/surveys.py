"""Survey rules, pure: answer validation per question type, answers to profile fields, result counters and NPS.

Answers fall in two groups. Personal ones (free text, dates, phones, e-mails,
and anything that fills a personal profile field) may only be stored in the
personal-data table; the rest (choices, ratings, NPS, consent ticks) are kept
with the response summary and counted in the survey's results.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from chalicelib.domain.phones import normalise
from chalicelib.schemas.customers import PERSONAL_FIELDS
from chalicelib.schemas.surveys import CHOICE_TYPES, ProfileField, Question, QuestionType

DEFAULT_TEXT_LENGTH = 500
DEFAULT_SCALE = 5
NAME_LENGTH = 120
"""Names are profile fields of at most 120 characters, whatever the question allows."""
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EARLIEST_BIRTH = date(1900, 1, 1)
PROMOTER_MIN = 9
DETRACTOR_MAX = 6
ALWAYS_PERSONAL = frozenset({QuestionType.TEXT, QuestionType.DATE, QuestionType.PHONE, QuestionType.EMAIL})


@dataclass
class Checked:
    """Valid answers by question id, or the problems found (field `answers.<qid>`, issue)."""

    answers: dict[str, Any] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)


def is_personal(question: Question) -> bool:
    """True when the answer may only live in the personal-data table."""
    if question.type in ALWAYS_PERSONAL:
        return True
    return question.maps_to is not None and question.maps_to.value in PERSONAL_FIELDS


Outcome = tuple[Any, str | None]
"""(clean value, None) or (None, the issue)."""


def _check_text(question: Question, value: Any, today: date) -> Outcome:
    """Trimmed text within the question's limit (a name's limit when it fills a profile field)."""
    if not isinstance(value, str):
        return None, "must be text"
    text = value.strip()
    limit = question.max_length or DEFAULT_TEXT_LENGTH
    if question.maps_to is not None:
        limit = min(limit, NAME_LENGTH)
    if len(text) > limit:
        return None, f"at most {limit} characters"
    return text, None


def _check_single_choice(question: Question, value: Any, today: date) -> Outcome:
    if not isinstance(value, str) or value not in {o.id for o in question.options}:
        return None, "must be one of the option ids"
    return value, None


def _check_multiple_choice(question: Question, value: Any, today: date) -> Outcome:
    """Distinct known option ids, kept in the question's order."""
    ids = {o.id for o in question.options}
    if not isinstance(value, list) or not value:
        return None, "must be a non-empty list of option ids"
    if len(set(value)) != len(value):
        return None, "an option is chosen twice"
    unknown = [v for v in value if v not in ids]
    if unknown:
        return None, f"unknown option {unknown[0]!r}"
    order = [o.id for o in question.options]
    return sorted(value, key=order.index), None


def _check_scale(question: Question, value: Any, today: date) -> Outcome:
    """A whole number on the question's scale (1..scale for a rating, 0..10 for NPS); a bool is no number."""
    top, bottom = (question.scale or DEFAULT_SCALE, 1) if question.type is QuestionType.RATING else (10, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not bottom <= value <= top:
        return None, f"must be a whole number from {bottom} to {top}"
    return value, None


def _check_date(question: Question, value: Any, today: date) -> Outcome:
    """An ISO date; a birth date is also between EARLIEST_BIRTH and today."""
    try:
        parsed = date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        parsed = None
    if parsed is None:
        return None, "must be a date YYYY-MM-DD"
    if question.maps_to is ProfileField.BIRTH_DATE and not EARLIEST_BIRTH <= parsed <= today:
        return None, "a birth date is between 1900-01-01 and today"
    return parsed.isoformat(), None


def _check_phone(question: Question, value: Any, today: date) -> Outcome:
    if not isinstance(value, str) or not 5 <= len(value) <= 32:
        return None, "must be a phone number"
    try:
        return normalise(value), None
    except ValueError as exc:
        return None, str(exc)


def _check_email(question: Question, value: Any, today: date) -> Outcome:
    if not isinstance(value, str) or len(value) > 254 or not EMAIL.fullmatch(value.strip()):
        return None, "must be an e-mail address"
    return value.strip().lower(), None


def _check_consent(question: Question, value: Any, today: date) -> Outcome:
    """A tick: true or false, and true when the question is required."""
    if not isinstance(value, bool):
        return None, "must be true or false"
    if question.required and not value:
        return None, "must be accepted"
    return value, None


CHECKERS: dict[QuestionType, Callable[[Question, Any, date], Outcome]] = {
    QuestionType.TEXT: _check_text,
    QuestionType.SINGLE_CHOICE: _check_single_choice,
    QuestionType.MULTIPLE_CHOICE: _check_multiple_choice,
    QuestionType.RATING: _check_scale,
    QuestionType.NPS: _check_scale,
    QuestionType.DATE: _check_date,
    QuestionType.PHONE: _check_phone,
    QuestionType.EMAIL: _check_email,
    QuestionType.CONSENT: _check_consent,
}
"""One checker per question type; each takes (question, answer, today) and returns an Outcome."""


def _check_one(question: Question, value: Any, today: date) -> Outcome:
    """(clean value, None) or (None, the issue), by the question type's checker."""
    return CHECKERS.get(question.type, _check_consent)(question, value, today)


def check_answers(questions: Iterable[Question], answers: Mapping[str, Any], today: date) -> Checked:
    """Every answer against its question: type, options, bounds, required; unknown question ids are errors."""
    out = Checked()
    by_id = {q.id: q for q in questions}
    for qid in answers:
        if qid not in by_id:
            out.errors.append((f"answers.{qid}", "no such question in this survey"))
    for qid, question in by_id.items():
        value = answers.get(qid)
        if value is None or (isinstance(value, str) and not value.strip()):
            if question.required:
                out.errors.append((f"answers.{qid}", "an answer is required"))
            continue
        clean, issue = _check_one(question, value, today)
        if issue is not None:
            out.errors.append((f"answers.{qid}", issue))
        else:
            out.answers[qid] = clean
    return out


def split(questions: Iterable[Question], answers: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(non-personal answers, personal answers): the first may go to the loyalty table, the second may not."""
    plain: dict[str, Any] = {}
    personal: dict[str, Any] = {}
    for question in questions:
        if question.id in answers:
            (personal if is_personal(question) else plain)[question.id] = answers[question.id]
    return plain, personal


def unidentified(questions: Sequence[Question], answers: Mapping[str, Any]) -> dict[str, Any]:
    """What a response from nobody in particular keeps: non-personal answers that are no consent.

    Without a verified phone or an invitation nobody is known to stand behind
    the answers, so personal ones (names, phones, e-mails, free text) and
    consent ticks would be claims about someone unproven: they are dropped.
    Choices, ratings and NPS still count in the results.
    """
    plain, _ = split(questions, answers)
    consent_ids = {q.id for q in questions if q.type is QuestionType.CONSENT}
    return {qid: value for qid, value in plain.items() if qid not in consent_ids}


@dataclass(frozen=True)
class Consent:
    kind: str
    granted: bool
    text_version: str


@dataclass
class Profile:
    """What the answers say about the customer: personal fields, tags and consent decisions."""

    personal: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    consents: list[Consent] = field(default_factory=list)


def profile_of(questions: Iterable[Question], answers: Mapping[str, Any]) -> Profile:
    """Map answers to profile fields (`maps_to`) and consent questions to consent decisions."""
    out = Profile()
    for question in questions:
        if question.id not in answers:
            continue
        value = answers[question.id]
        if question.type is QuestionType.CONSENT:
            assert question.consent_kind is not None and question.consent_text_version is not None
            out.consents.append(Consent(question.consent_kind.value, bool(value), question.consent_text_version))
            continue
        target = question.maps_to
        if target is None:
            continue
        values = value if isinstance(value, list) else [value]
        if target is ProfileField.TAGS:
            out.tags = list(dict.fromkeys([*out.tags, *values]))
        elif target is ProfileField.PREFERENCES:
            out.personal["preferences"] = list(values)
        else:
            out.personal[target.value] = value
    return out


# --- results ----------------------------------------------------------------------------

TOTAL = "n"


def counter_keys(questions: Iterable[Question], answers: Mapping[str, Any]) -> list[str]:
    """The result counters one response adds 1 to: answered per question, plus per option/value where not personal."""
    keys = [TOTAL]
    for question in questions:
        if question.id not in answers:
            continue
        keys.append(f"{question.id}#a")
        if is_personal(question):
            continue
        value = answers[question.id]
        if question.type in CHOICE_TYPES:
            keys += [f"{question.id}#o#{v}" for v in (value if isinstance(value, list) else [value])]
        elif question.type in (QuestionType.RATING, QuestionType.NPS):
            keys.append(f"{question.id}#v#{int(value)}")
        elif question.type is QuestionType.CONSENT:
            keys.append(f"{question.id}#{'y' if value else 'n'}")
    return keys


def _div_half_away(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to the nearest integer, halves away from zero; exact integer arithmetic."""
    sign = -1 if numerator < 0 else 1
    return sign * ((2 * abs(numerator) + denominator) // (2 * denominator))


def nps_bps(distribution: Mapping[int, int]) -> int:
    """NPS = %promoters (9-10) - %detractors (0-6), in basis points (-10000..10000); 0 with no answers."""
    total = sum(distribution.values())
    if total <= 0:
        return 0
    promoters = sum(n for v, n in distribution.items() if v >= PROMOTER_MIN)
    detractors = sum(n for v, n in distribution.items() if v <= DETRACTOR_MAX)
    return _div_half_away((promoters - detractors) * 10_000, total)


def average_x100(distribution: Mapping[int, int]) -> int | None:
    """The average value times 100, rounded half up; None with no answers."""
    total = sum(distribution.values())
    if total <= 0:
        return None
    return _div_half_away(sum(v * n for v, n in distribution.items()) * 100, total)


def results(questions: Iterable[Question], counters: Mapping[str, int]) -> dict[str, Any]:
    """The survey's aggregate results from its counters: never an individual answer."""
    out: list[dict[str, Any]] = []
    for q in questions:
        row: dict[str, Any] = {"question_id": q.id, "type": q.type, "label": q.label,
                               "answered": int(counters.get(f"{q.id}#a", 0))}
        if not is_personal(q):
            if q.type in CHOICE_TYPES:
                row["options"] = [{"id": o.id, "label": o.label, "count": int(counters.get(f"{q.id}#o#{o.id}", 0))}
                                  for o in q.options]
            elif q.type in (QuestionType.RATING, QuestionType.NPS):
                low, high = (1, q.scale or DEFAULT_SCALE) if q.type is QuestionType.RATING else (0, 10)
                dist = {v: int(counters.get(f"{q.id}#v#{v}", 0)) for v in range(low, high + 1)}
                row["distribution"] = {str(v): n for v, n in dist.items()}
                if q.type is QuestionType.RATING:
                    row["average_x100"] = average_x100(dist)
                else:
                    row["promoters"] = sum(n for v, n in dist.items() if v >= PROMOTER_MIN)
                    row["detractors"] = sum(n for v, n in dist.items() if v <= DETRACTOR_MAX)
                    row["passives"] = sum(dist.values()) - row["promoters"] - row["detractors"]
                    row["nps_bps"] = nps_bps(dist)
            elif q.type is QuestionType.CONSENT:
                row["granted"] = int(counters.get(f"{q.id}#y", 0))
                row["declined"] = int(counters.get(f"{q.id}#n", 0))
        out.append(row)
    return {"responses": int(counters.get(TOTAL, 0)), "questions": out}


# --- changing a survey that has responses -------------------------------------------------

def incompatible_changes(old: list[Question], new: list[Question]) -> list[tuple[str, str]]:
    """Why `new` cannot replace `old` once responses exist: results and stored answers must keep their meaning.

    Every existing question stays, with its type, scale, profile mapping,
    consent kind and option ids; labels may be reworded, options and
    questions added.
    """
    problems: list[tuple[str, str]] = []
    new_by_id = {q.id: (i, q) for i, q in enumerate(new)}
    for question in old:
        if question.id not in new_by_id:
            problems.append(("questions", f"question {question.id!r} has answers and cannot be removed"))
            continue
        index, changed = new_by_id[question.id]
        where = f"questions[{index}]"
        for name in ("type", "scale", "maps_to", "consent_kind"):
            if getattr(question, name) != getattr(changed, name):
                problems.append((f"{where}.{name}", "cannot change once the survey has responses"))
        missing = {o.id for o in question.options} - {o.id for o in changed.options}
        if missing:
            problems.append((f"{where}.options", f"options {sorted(missing)} have answers and cannot be removed"))
    return problems


def reward_text(reward: Mapping[str, Any]) -> str | None:
    """A short public description of the reward (no program or campaign ids)."""
    kind = reward.get("kind")
    if kind == "card":
        return "A loyalty card"
    if kind == "points":
        return f"{int(reward['points'])} bonus points"
    if kind == "coupon":
        return "A coupon"
    return None
