"""The pre-read checks of inbound pushes and the unsigned-bytes budget (issue 14)."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, config_from_dict
from gateway.model import too_deep
from gateway.signing import SignatureError, check_headers, sign, verify
from gateway.web.admin.auth import same
from gateway.web.inbound import UnsignedBudget

NOW = 1_700_000_000


@pytest.mark.parametrize(
    "signature",
    ["sha256=" + "é" * 64, "sha256=\udcff" * 3, "ｓｈａ２５６=00", "sha256=" + "a" * 200],
)
def test_a_non_ascii_or_oversized_signature_is_a_signature_error(signature: str) -> None:
    headers = {"X-Timestamp": str(NOW), "X-Signature": signature}
    with pytest.raises(SignatureError, match="X-Signature must be sha256=<hex>"):
        check_headers(headers, now=NOW)
    with pytest.raises(SignatureError):
        verify("0123456789abcdef0123456789abcdef", b"{}", headers, now=NOW)


def test_check_headers_needs_no_body_and_returns_what_check_body_needs() -> None:
    headers = sign("k" * 32, b"body", NOW)
    ts, mac = check_headers(headers, now=NOW)
    assert ts == str(NOW) and len(mac) == 64
    with pytest.raises(SignatureError, match="away from the gateway clock"):
        check_headers(headers, now=NOW + 301)


@pytest.mark.parametrize("a", ["é", "\udcff", "\ud800", "abc", ""])
def test_same_compares_any_text_without_raising(a: str) -> None:
    assert same(a, a)
    assert not same(a, a + "x")


def test_the_budget_holds_total_and_per_system() -> None:
    budget = UnsignedBudget(total=100, per_system=60)
    assert budget.take("a", 60)
    assert not budget.take("a", 1), "per system"
    assert budget.take("b", 40)
    assert not budget.take("c", 1), "in total"
    budget.give("a", 60)
    assert budget.take("c", 50)
    budget.give("b", 40)
    budget.give("c", 50)
    assert budget.held == 0 and not any(budget.by_system.values())


def test_unsigned_budgets_default_from_the_body_limit_and_may_not_be_smaller() -> None:
    limits = config_from_dict({"limits": {"max_body_bytes": 1000}}).limits
    assert (limits.unsigned_total, limits.unsigned_per_system) == (2000, 1000)
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"limits": {"max_body_bytes": 1000, "unsigned_bytes_per_system": 999}})
    assert caught.value.key == "limits.unsigned_bytes_per_system"
    assert "max_body_bytes" in caught.value.problem


def nested(depth: int) -> object:
    value: object = "x"
    for i in range(depth - 1):
        value = [value] if i % 2 else {"k": value}
    return {"root": value}


def test_too_deep_counts_levels_without_recursion() -> None:
    assert not too_deep([nested(32)], 32)
    assert too_deep([nested(33)], 32)
    assert too_deep([{"a": 1}, nested(100_000)], 32)  # far deeper than Python recurses
    assert not too_deep([{"a": [1, 2, {"b": "c"}]}], 3)


def test_the_failure_throttle_allows_ten_then_one_every_six_seconds() -> None:
    from gateway.web.admin.auth import FailureThrottle

    t = FailureThrottle(allowed=10, refill=6.0, tracked=3)
    for _ in range(10):
        assert t.wait("a", now=100.0) == 0
        t.failed("a", now=100.0)
    assert t.wait("a", now=100.0) == 6
    assert t.wait("a", now=103.0) == 3
    assert t.wait("a", now=106.0) == 0
    assert t.wait("b", now=100.0) == 0  # per address
    for address in ("b", "c", "d", "e"):  # bounded memory: the oldest are forgotten
        t.failed(address, now=200.0)
    assert len(t._spent) <= 3


def test_a_signin_nonce_is_single_use_and_expires() -> None:
    from gateway.web.admin.auth import SIGNIN_SECONDS, Auth

    auth = Auth(config_from_dict({}))
    nonce, cookie = auth.signin_nonce(now=1000.0)
    assert auth.signin_expected(cookie, now=1000.0) == nonce
    assert auth.signin_expected(cookie, now=1000.0 + SIGNIN_SECONDS + 1) is None
    auth.use_nonce(nonce, now=1001.0)
    assert auth.signin_expected(cookie, now=1002.0) is None
    assert auth.signin_expected(cookie.replace("x", "y", 1), now=1000.0) is None


def test_a_polled_page_loses_only_its_too_deep_items() -> None:
    from gateway.model import Message, ParseResult, Rejection, without_too_deep

    good = Message(event="e", external_id="G1", payload={"a": [1, {"b": 2}]})
    deep = Message(event="e", external_id="D1", payload=nested(5000))  # type: ignore[arg-type]
    earlier = Rejection("R0", ("bad",))
    page = ParseResult(messages=[good, deep], rejected=[earlier])
    kept = without_too_deep(page, 32)
    assert kept.messages == [good]
    assert kept.rejected == [earlier, Rejection("D1", ("nested deeper than 32 levels",))]
    assert without_too_deep(ParseResult(messages=[good]), 32).messages == [good]
