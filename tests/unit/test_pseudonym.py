"""Keyed pseudonyms for CCCDs in keys and references (issue 14, finding 5)."""

from __future__ import annotations

import re

import pytest

from gateway import pseudonym


@pytest.fixture
def key() -> str:
    return "ab" * 32


def test_a_pseudonym_keeps_four_digits_and_a_keyed_hash(key: str) -> None:
    pseudonym.install_key(key)
    p = pseudonym.pseudonym("006135001234")
    assert re.fullmatch(r"\*{8}1234-[a-p]{16}", p)
    assert "006135001234" not in p
    assert pseudonym.pseudonym("006135001234") == p  # stable
    assert pseudonym.pseudonym("006135009234") != p  # another person, same last four digits


def test_another_key_gives_other_pseudonyms(key: str) -> None:
    pseudonym.install_key(key)
    first = pseudonym.pseudonym("006135001234")
    pseudonym.install_key("cd" * 32)
    assert pseudonym.pseudonym("006135001234") != first
    pseudonym.install_key(key)
    assert pseudonym.pseudonym("006135001234") == first


def test_a_key_typed_with_a_cccd_finds_the_stored_key(key: str) -> None:
    pseudonym.install_key(key)
    stored = f"02053:{pseudonym.pseudonym('006135001234')}"
    assert pseudonym.pseudonymise_key("02053:006135001234") == stored
    assert pseudonym.pseudonymise_key(stored) == stored  # already a pseudonym: unchanged
    assert pseudonym.pseudonymise_key("000.00.12.H06-200803-0001") == "000.00.12.H06-200803-0001"
