"""Survey rules: answer validation for every question type, profile mapping, counters, NPS and rating maths."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from chalicelib.domain import surveys as rules
from chalicelib.schemas.surveys import Question, ResponseIn, SurveyDefinition

TODAY = date(2026, 11, 2)


def q(**fields: Any) -> Question:
    return Question.model_validate({"label": "?", **fields}, strict=False)


def check(question: Question, value: Any) -> tuple[Any, list[tuple[str, str]]]:
    out = rules.check_answers([question], {question.id: value}, TODAY)
    return out.answers.get(question.id), out.errors


CHOICES = [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}, {"id": "c", "label": "C"}]


# --- validation per type -----------------------------------------------------------------------

def test_text_is_trimmed_and_bounded_by_its_max_length() -> None:
    question = q(id="t", type="text", max_length=10)
    assert check(question, "  hello  ") == ("hello", [])
    assert check(question, "x" * 11) == (None, [("answers.t", "at most 10 characters")])
    assert check(question, 5) == (None, [("answers.t", "must be text")])
    assert check(q(id="d", type="text"), "y" * 500)[0] == "y" * 500
    assert check(q(id="d", type="text"), "y" * 501)[1] == [("answers.d", "at most 500 characters")]


def test_a_text_mapped_to_a_name_is_capped_at_the_profile_fields_length() -> None:
    question = q(id="n", type="text", max_length=2000, maps_to="first_name")
    assert check(question, "x" * 120)[0] == "x" * 120
    assert check(question, "x" * 121)[1] == [("answers.n", "at most 120 characters")]


def test_single_choice_takes_one_option_id() -> None:
    question = q(id="s", type="single_choice", options=CHOICES)
    assert check(question, "b") == ("b", [])
    assert check(question, "z") == (None, [("answers.s", "must be one of the option ids")])
    assert check(question, ["a"])[1] == [("answers.s", "must be one of the option ids")]


def test_multiple_choice_takes_distinct_known_ids_kept_in_option_order() -> None:
    question = q(id="m", type="multiple_choice", options=CHOICES)
    assert check(question, ["c", "a"]) == (["a", "c"], [])
    assert check(question, ["a", "a"])[1] == [("answers.m", "an option is chosen twice")]
    assert check(question, ["a", "z"])[1] == [("answers.m", "unknown option 'z'")]
    assert check(question, [])[1] == [("answers.m", "must be a non-empty list of option ids")]
    assert check(question, "a")[1] == [("answers.m", "must be a non-empty list of option ids")]


def test_rating_is_a_whole_number_from_1_to_its_scale() -> None:
    question = q(id="r", type="rating", scale=7)
    assert check(question, 7) == (7, [])
    assert check(question, 1) == (1, [])
    for bad in (0, 8, True, "5", 4.5):
        assert check(question, bad)[1] == [("answers.r", "must be a whole number from 1 to 7")], bad
    assert check(q(id="d", type="rating"), 6)[1] == [("answers.d", "must be a whole number from 1 to 5")]


def test_nps_is_a_whole_number_from_0_to_10() -> None:
    question = q(id="n", type="nps")
    assert check(question, 0) == (0, [])
    assert check(question, 10) == (10, [])
    for bad in (-1, 11, False, "9"):
        assert check(question, bad)[1] == [("answers.n", "must be a whole number from 0 to 10")], bad


def test_date_is_iso_and_a_birth_date_is_plausible() -> None:
    assert check(q(id="d", type="date"), "2030-01-31") == ("2030-01-31", [])
    for bad in ("2026-02-30", "31.01.1990", "1990-1-1", 19900101):
        assert check(q(id="d", type="date"), bad)[1] == [("answers.d", "must be a date YYYY-MM-DD")], bad
    birth = q(id="b", type="date", maps_to="birth_date")
    assert check(birth, "1990-05-17") == ("1990-05-17", [])
    assert check(birth, "2026-11-02")[0] == "2026-11-02"
    for bad in ("2026-11-03", "1899-12-31"):
        assert check(birth, bad)[1] == [("answers.b", "a birth date is between 1900-01-01 and today")]


def test_phone_is_normalised_to_e164() -> None:
    question = q(id="p", type="phone")
    assert check(question, "8 (916) 123-45-67") == ("+79161234567", [])
    assert check(question, "12")[1] == [("answers.p", "must be a phone number")]
    value, errors = check(question, "+7 000 000 00 00")
    assert value is None and errors[0][0] == "answers.p"


def test_email_is_lowercased_and_checked() -> None:
    question = q(id="e", type="email")
    assert check(question, " Anna@Example.COM ") == ("anna@example.com", [])
    for bad in ("anna", "a@b", "a b@c.d", 7):
        assert check(question, bad)[1] == [("answers.e", "must be an e-mail address")], bad


def test_consent_is_a_boolean_and_a_required_one_must_be_accepted() -> None:
    optional = q(id="c", type="consent", consent_kind="sms", consent_text_version="v1")
    assert check(optional, False) == (False, [])
    assert check(optional, "yes")[1] == [("answers.c", "must be true or false")]
    required = q(id="c", type="consent", consent_kind="personal_data", consent_text_version="v1", required=True)
    assert check(required, True) == (True, [])
    assert check(required, False)[1] == [("answers.c", "must be accepted")]


def test_required_missing_and_unknown_questions_are_reported_per_field() -> None:
    questions = [q(id="a", type="nps", required=True), q(id="b", type="text"), q(id="c", type="text", required=True)]
    out = rules.check_answers(questions, {"b": "  ", "c": None, "zz": 1}, TODAY)
    assert out.answers == {}
    assert sorted(out.errors) == [("answers.a", "an answer is required"), ("answers.c", "an answer is required"),
                                  ("answers.zz", "no such question in this survey")]


# --- schema bounds ---------------------------------------------------------------------------------

def test_response_schema_caps_answer_count_and_sizes() -> None:
    assert ResponseIn.model_validate({"answers": {"a": "x" * 2000, "b": ["a"] * 30, "c": 3, "d": True}})
    with pytest.raises(ValidationError) as too_long:
        ResponseIn.model_validate({"answers": {"a": "x" * 2001}})
    assert too_long.value.errors()[0]["loc"] == ("answers", "a")
    with pytest.raises(ValidationError):
        ResponseIn.model_validate({"answers": {f"q{i}": 1 for i in range(51)}})
    with pytest.raises(ValidationError):
        ResponseIn.model_validate({"answers": {"a": 1.5}})
    with pytest.raises(ValidationError):
        ResponseIn.model_validate({"answers": {"a": ["x"] * 31}})


def _definition(**fields: Any) -> dict[str, Any]:
    return {"title": "T", "kind": "registration", "reward": {"kind": "none"},
            "questions": [{"id": "p", "type": "phone", "label": "Phone", "required": True, "maps_to": "phone"}],
            **fields}


def test_definitions_check_shapes_and_mappings() -> None:
    assert SurveyDefinition.model_validate_json(json.dumps(_definition())).questions[0].maps_to == "phone"
    phone = _definition()["questions"]
    bad = [
        (_definition(questions=[{"id": "p", "type": "phone", "label": "P"}]), "needs a required phone question"),
        (_definition(questions=phone * 2), "question ids must be unique"),
        (_definition(questions=[*phone, {"id": "x", "type": "single_choice", "label": "X",
                                         "options": [{"id": "a", "label": "A"}]}]), "at least 2 options"),
        (_definition(questions=[*phone, {"id": "x", "type": "rating", "label": "X", "scale": 11}]),
         "less than or equal to 10"),
        (_definition(questions=[*phone, {"id": "x", "type": "text", "label": "X", "maps_to": "birth_date"}]),
         "cannot fill birth_date"),
        (_definition(questions=[*phone, {"id": "x", "type": "consent", "label": "X"}]), "need consent_kind"),
        (_definition(questions=[*phone, {"id": "g", "type": "single_choice", "label": "G", "maps_to": "gender",
                                         "options": CHOICES}]), "gender options"),
        (_definition(questions=[*phone, {"id": "t", "type": "text", "label": "T", "max_length": 2001}]),
         "less than or equal to 2000"),
        (_definition(starts_at="2026-11-02T10:00:00Z", ends_at="2026-11-01T10:00:00Z"), "ends_at must be after"),
    ]
    for body, reason in bad:
        with pytest.raises(ValidationError) as err:
            SurveyDefinition.model_validate_json(json.dumps(body))
        assert reason in str(err.value), reason


# --- mapping to the profile, personal split, counters ---------------------------------------------------

QUESTIONS = [
    q(id="p", type="phone", maps_to="phone", required=True),
    q(id="n", type="text", maps_to="first_name"),
    q(id="b", type="date", maps_to="birth_date"),
    q(id="g", type="single_choice", maps_to="gender", options=[{"id": "female", "label": "F"},
                                                              {"id": "male", "label": "M"}]),
    q(id="likes", type="multiple_choice", maps_to="tags", options=CHOICES),
    q(id="pref", type="multiple_choice", maps_to="preferences", options=CHOICES),
    q(id="drink", type="single_choice", options=CHOICES),
    q(id="why", type="text"),
    q(id="stars", type="rating", scale=5),
    q(id="nps", type="nps"),
    q(id="sms", type="consent", consent_kind="sms", consent_text_version="sms-v2"),
]
ANSWERS = {"p": "+79161234567", "n": "Anna", "b": "1990-05-17", "g": "female", "likes": ["a", "b"],
           "pref": ["c"], "drink": "b", "why": "secret", "stars": 4, "nps": 9, "sms": False}


def test_answers_fill_profile_fields_tags_and_consents() -> None:
    profile = rules.profile_of(QUESTIONS, ANSWERS)
    assert profile.personal == {"phone": "+79161234567", "first_name": "Anna", "birth_date": "1990-05-17",
                                "gender": "female", "preferences": ["c"]}
    assert profile.tags == ["a", "b"]
    assert profile.consents == [rules.Consent("sms", False, "sms-v2")]


def test_personal_answers_are_split_from_the_rest() -> None:
    plain, personal = rules.split(QUESTIONS, ANSWERS)
    assert plain == {"likes": ["a", "b"], "drink": "b", "stars": 4, "nps": 9, "sms": False}
    assert personal == {"p": "+79161234567", "n": "Anna", "b": "1990-05-17", "g": "female", "pref": ["c"],
                        "why": "secret"}


def test_counters_count_non_personal_values_and_only_answered_for_personal_ones() -> None:
    keys = rules.counter_keys(QUESTIONS, ANSWERS)
    assert keys == ["n", "p#a", "n#a", "b#a", "g#a", "likes#a", "likes#o#a", "likes#o#b", "pref#a", "drink#a",
                    "drink#o#b", "why#a", "stars#a", "stars#v#4", "nps#a", "nps#v#9", "sms#a", "sms#n"]
    counters: dict[str, int] = {}
    for key in keys:
        counters[key] = counters.get(key, 0) + 1
    result = rules.results(QUESTIONS, counters)
    assert result["responses"] == 1
    by_id = {row["question_id"]: row for row in result["questions"]}
    assert by_id["g"] == {"question_id": "g", "type": "single_choice", "label": "?", "answered": 1}
    assert by_id["drink"]["options"] == [{"id": "a", "label": "A", "count": 0}, {"id": "b", "label": "B", "count": 1},
                                         {"id": "c", "label": "C", "count": 0}]
    assert by_id["stars"]["average_x100"] == 400
    assert (by_id["nps"]["promoters"], by_id["nps"]["nps_bps"]) == (1, 10000)
    assert (by_id["sms"]["granted"], by_id["sms"]["declined"]) == (0, 1)


# --- NPS and averages ------------------------------------------------------------------------------------

def test_nps_examples() -> None:
    assert rules.nps_bps({}) == 0
    assert rules.nps_bps({10: 1}) == 10000
    assert rules.nps_bps({0: 3}) == -10000
    assert rules.nps_bps({7: 5, 8: 5}) == 0
    assert rules.nps_bps({10: 2, 3: 1}) == 3333
    assert rules.nps_bps({9: 1, 0: 2}) == -3333
    assert rules.nps_bps({10: 1, 6: 1, 7: 6}) == 0
    assert rules.nps_bps({9: 2, 5: 1, 8: 5}) == 1250
    assert rules.nps_bps({9: 1, 8: 5, 7: 10, 6: 0, 3: 0, 1: 0}) == 625


def test_nps_rounds_halves_away_from_zero() -> None:
    assert rules.nps_bps({10: 1, 8: 15, 7: 16999 - 16}) == 1  # 10000 / 16999 = 0.588 -> 1
    assert rules.nps_bps({10: 1, 8: 19999}) == 1  # 0.5 -> 1
    assert rules.nps_bps({0: 1, 8: 19999}) == -1  # -0.5 -> -1


@given(st.dictionaries(st.integers(min_value=0, max_value=10), st.integers(min_value=0, max_value=10_000)))
def test_nps_is_bounded_and_exact(distribution: dict[int, int]) -> None:
    bps = rules.nps_bps(distribution)
    total = sum(distribution.values())
    assert -10000 <= bps <= 10000
    if total:
        promoters = sum(n for v, n in distribution.items() if v >= 9)
        detractors = sum(n for v, n in distribution.items() if v <= 6)
        assert abs(bps * total - (promoters - detractors) * 10000) * 2 <= total
    else:
        assert bps == 0


@given(st.dictionaries(st.integers(min_value=0, max_value=10), st.integers(min_value=0, max_value=1000)),
       st.integers(min_value=1, max_value=1000))
def test_scaling_every_count_keeps_the_nps(distribution: dict[int, int], factor: int) -> None:
    assert rules.nps_bps({v: n * factor for v, n in distribution.items()}) == rules.nps_bps(distribution)


def test_average_rating_times_100() -> None:
    assert rules.average_x100({}) is None
    assert rules.average_x100({1: 0, 5: 0}) is None
    assert rules.average_x100({5: 2, 2: 1}) == 400
    assert rules.average_x100({5: 1, 4: 1, 2: 1}) == 367
    assert rules.average_x100({1: 1, 2: 1}) == 150


# --- changing a survey that has answers -----------------------------------------------------------------

def test_existing_questions_keep_their_meaning_once_answered() -> None:
    old = [q(id="s", type="rating", scale=5), q(id="c", type="single_choice", options=CHOICES)]
    reworded = [q(id="s", type="rating", scale=5, label="New words"),
                q(id="c", type="single_choice", options=[*CHOICES, {"id": "d", "label": "D"}]), q(id="x", type="nps")]
    assert rules.incompatible_changes(old, reworded) == []
    changed = [q(id="c", type="single_choice", options=CHOICES[:2]), q(id="s", type="rating", scale=10)]
    assert rules.incompatible_changes(old, changed) == [
        ("questions[1].scale", "cannot change once the survey has responses"),
        ("questions[0].options", "options ['c'] have answers and cannot be removed")]
    assert rules.incompatible_changes(old, [q(id="c", type="multiple_choice", options=CHOICES)]) == [
        ("questions", "question 's' has answers and cannot be removed"),
        ("questions[0].type", "cannot change once the survey has responses")]


def test_reward_text_names_no_internal_ids() -> None:
    assert rules.reward_text({"kind": "points", "program_id": "main", "points": 150}) == "150 bonus points"
    assert rules.reward_text({"kind": "card", "program_id": "main"}) == "A loyalty card"
    assert rules.reward_text({"kind": "coupon", "campaign_id": "x"}) == "A coupon"
    assert rules.reward_text({"kind": "none"}) is None
