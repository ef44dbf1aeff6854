"""Phone verification rules: codes, their keyed hashes, the attempt budget, the SMS text, unverified answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import surveys
from chalicelib.domain import verification as rules
from chalicelib.schemas.surveys import Question

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
SECRET = "s" * 32


def _state(code: str = "123456", attempts: int = 0, status: rules.Status = rules.Status.PENDING,
           expires_in: timedelta = rules.CODE_TTL) -> rules.Attempt:
    return rules.Attempt(status=status, attempts=attempts, expires_at=NOW + expires_in,
                         code_hash=rules.code_hash(SECRET, "t", "v", "+79161234567", code))


def _hash(code: str, phone: str = "+79161234567", tenant: str = "t", vid: str = "v") -> str:
    return rules.code_hash(SECRET, tenant, vid, phone, code)


@given(st.integers(min_value=0, max_value=500))
def test_codes_are_six_digits_leading_zeros_kept(_: int) -> None:
    code = rules.new_code()
    assert len(code) == 6 and code.isdigit()


def test_the_hash_binds_the_code_to_its_tenant_verification_and_phone() -> None:
    base = _hash("123456")
    assert base == _hash("123456")
    assert len({base, _hash("123457"), _hash("123456", phone="+79169999999"), _hash("123456", tenant="u"),
                _hash("123456", vid="w"), rules.code_hash("other", "t", "v", "+79161234567", "123456")}) == 6
    assert "123456" not in base


def test_verdicts() -> None:
    assert rules.judge(_state(), _hash("123456"), NOW) is rules.Verdict.VERIFIED
    assert rules.judge(_state(), _hash("654321"), NOW) is rules.Verdict.WRONG
    assert rules.judge(_state(), _hash("123456", phone="+79169999999"), NOW) is rules.Verdict.WRONG
    assert rules.judge(_state(expires_in=timedelta(0)), _hash("123456"), NOW) is rules.Verdict.EXPIRED
    assert rules.judge(_state(expires_in=timedelta(seconds=1)), _hash("123456"), NOW) is rules.Verdict.VERIFIED
    assert rules.judge(_state(attempts=5), _hash("123456"), NOW) is rules.Verdict.EXHAUSTED
    assert rules.judge(_state(attempts=4), _hash("123456"), NOW) is rules.Verdict.VERIFIED
    for status in (rules.Status.VERIFIED, rules.Status.USED):
        assert rules.judge(_state(status=status), _hash("123456"), NOW) is rules.Verdict.SETTLED


def test_attempts_left_count_down_to_zero() -> None:
    assert [rules.attempts_left(_state(attempts=n)) for n in range(6)] == [4, 3, 2, 1, 0, 0]


@given(st.lists(st.text(alphabet="0123456789", min_size=6, max_size=6), min_size=1, max_size=20))
def test_no_sequence_of_wrong_codes_gets_more_than_five_tries(guesses: list[str]) -> None:
    """However the guesses go, a verification judges at most five of them before it is exhausted."""
    state, judged = _state(code="999999"), 0
    for guess in [g for g in guesses if g != "999999"]:
        verdict = rules.judge(state, _hash(guess), NOW)
        if verdict is rules.Verdict.EXHAUSTED:
            break
        judged += 1
        state = rules.Attempt(state.status, state.attempts + 1, state.expires_at, state.code_hash)
    assert judged <= rules.MAX_ATTEMPTS


def test_the_sms_says_the_code_first_and_who_asks() -> None:
    assert rules.sms_text("012345", "Кофейня", "ru").startswith("012345 — код подтверждения телефона для «Кофейня»")
    assert rules.sms_text("012345", "Coffee", "en") == (
        "012345 is your phone verification code for Coffee. Valid for 5 minutes. Do not share it.")
    assert rules.sms_text("1", "X", "xx") == rules.sms_text("1", "X", "ru")


def test_keyed_hashes_differ_by_kind_and_value() -> None:
    assert rules.keyed(SECRET, "phone", "+7916") != rules.keyed(SECRET, "address", "+7916")
    assert rules.keyed(SECRET, "phone", "+7916") == rules.keyed(SECRET, "phone", "+7916")
    assert len(rules.keyed(SECRET, "phone", "+7916")) == 32


QUESTIONS = [Question.model_validate(q, strict=False) for q in (
    {"id": "phone", "type": "phone", "label": "Phone", "maps_to": "phone"},
    {"id": "name", "type": "text", "label": "Name", "maps_to": "first_name"},
    {"id": "comment", "type": "text", "label": "Comment"},
    {"id": "drink", "type": "single_choice", "label": "Drink",
     "options": [{"id": "tea", "label": "Tea"}, {"id": "coffee", "label": "Coffee"}]},
    {"id": "likes", "type": "multiple_choice", "label": "Likes", "maps_to": "tags",
     "options": [{"id": "cakes", "label": "Cakes"}, {"id": "wifi", "label": "Wi-Fi"}]},
    {"id": "stars", "type": "rating", "label": "Stars"},
    {"id": "sms", "type": "consent", "label": "SMS", "consent_kind": "sms", "consent_text_version": "v1"},
)]


def test_an_unidentified_response_keeps_choices_and_ratings_only() -> None:
    answers = {"phone": "+79161234567", "name": "Mallory", "comment": "hi", "drink": "tea", "likes": ["cakes"],
               "stars": 2, "sms": True}
    kept = surveys.unidentified(QUESTIONS, answers)
    assert kept == {"drink": "tea", "likes": ["cakes"], "stars": 2}
    assert surveys.counter_keys(QUESTIONS, kept) == ["n", "drink#a", "drink#o#tea", "likes#a", "likes#o#cakes",
                                                     "stars#a", "stars#v#2"]
