"""Key minting, parsing, hashing and the bearer header: pure functions."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import keys as keys
from chalicelib.domain.ids import SLUG_PATTERN
from chalicelib.domain.roles import Role

owners = st.from_regex(SLUG_PATTERN, fullmatch=True)


@given(role=st.sampled_from(list(Role)), owner=owners)
def test_minted_keys_parse_back_to_their_role_owner_and_id(role: Role, owner: str) -> None:
    new = keys.mint(role, owner)
    parsed = keys.parse(new.plaintext)
    assert parsed == keys.ParsedKey(role=role, owner=owner, key_id=new.key_id)
    assert new.plaintext.startswith(f"lp_{keys.ROLE_CODES[role]}_{owner}.{new.key_id}.")
    assert new.display_prefix == new.plaintext.rsplit(".", 1)[0]
    assert len(new.plaintext) <= keys.MAX_KEY_LENGTH


def test_hash_is_sha256_of_the_whole_key_and_matches_only_that_key() -> None:
    new = keys.mint(Role.POS, "coffee-house")
    assert new.key_hash == hashlib.sha256(new.plaintext.encode()).hexdigest()
    assert keys.matches(new.plaintext, new.key_hash)
    assert not keys.matches(new.plaintext[:-1] + ("A" if new.plaintext[-1] != "A" else "B"), new.key_hash)


def test_secrets_are_unique_and_carry_256_bits() -> None:
    minted = [keys.mint(Role.POS, "t1") for _ in range(200)]
    assert len({k.plaintext for k in minted}) == 200
    assert len({k.key_id for k in minted}) == 200
    secret = minted[0].plaintext.rsplit(".", 1)[1]
    assert len(secret) == 43  # 32 bytes, base64url without padding


@given(st.text(max_size=200))
def test_parse_never_raises_on_arbitrary_input(text: str) -> None:
    parsed = keys.parse(text)
    if parsed is not None:
        assert keys.parse(text) == parsed


def test_malformed_keys_are_rejected() -> None:
    good = keys.mint(Role.SUPPORT, "fuel-net").plaintext
    prefix, key_id, secret = good.split(".")
    for bad in ["", "lp_sup_fuel-net", f"{prefix}.{key_id}", f"lp_zzz_fuel-net.{key_id}.{secret}",
                f"lp_sup_Fuel-Net.{key_id}.{secret}", f"lp_sup_fuel-net.{key_id}.{secret}x",
                f"lp_sup_fuel#net.{key_id}.{secret}", good + "\n", "x" * 1000]:
        assert keys.parse(bad) is None, bad


def test_bearer_header_parsing() -> None:
    assert keys.bearer_token("Bearer abc") == "abc"
    assert keys.bearer_token("bearer   abc  ") == "abc"
    for header in [None, "", "Bearer", "Bearer   ", "Basic abc", "abc"]:
        assert keys.bearer_token(header) is None
