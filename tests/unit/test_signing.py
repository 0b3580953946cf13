"""HMAC signatures of inbound pushes (FORMATS.md §1.1): sign/verify and every refusal."""

from __future__ import annotations

import pytest

from gateway.signing import SignatureError, sign, verify

SECRET = "shared-secret"
BODY = '{"data": [{"id": "HS-1", "ten": "Hoàng Thị Lan"}]}'.encode()
NOW = 1_700_000_000


def test_round_trip_verifies() -> None:
    headers = sign(SECRET, BODY, NOW)
    assert headers["X-Timestamp"] == str(NOW)
    assert headers["X-Signature"].startswith("sha256=")
    assert len(headers["X-Signature"]) == len("sha256=") + 64
    verify(SECRET, BODY, headers, now=NOW)


def test_sign_without_timestamp_uses_the_clock() -> None:
    verify(SECRET, BODY, sign(SECRET, BODY))


def test_signature_is_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    headers = sign(SECRET, BODY, NOW)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert headers["X-Signature"] == f"sha256={expected}"


@pytest.mark.parametrize("missing", ["X-Timestamp", "X-Signature"])
def test_missing_header_is_refused(missing: str) -> None:
    headers = sign(SECRET, BODY, NOW)
    del headers[missing]
    with pytest.raises(SignatureError, match="missing X-Timestamp or X-Signature"):
        verify(SECRET, BODY, headers, now=NOW)


def test_empty_headers_are_refused() -> None:
    with pytest.raises(SignatureError, match="missing"):
        verify(SECRET, BODY, {}, now=NOW)


def test_wrong_secret_is_refused() -> None:
    headers = sign("another-secret", BODY, NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, BODY, headers, now=NOW)


def test_tampered_body_is_refused() -> None:
    headers = sign(SECRET, BODY, NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, BODY.replace(b"HS-1", b"HS-2"), headers, now=NOW)


def test_tampered_timestamp_is_refused() -> None:
    headers = sign(SECRET, BODY, NOW)
    headers["X-Timestamp"] = str(NOW + 1)
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, BODY, headers, now=NOW)


def test_signature_without_scheme_is_refused() -> None:
    headers = sign(SECRET, BODY, NOW)
    headers["X-Signature"] = headers["X-Signature"].removeprefix("sha256=")
    with pytest.raises(SignatureError, match="sha256="):
        verify(SECRET, BODY, headers, now=NOW)


@pytest.mark.parametrize("ts", ["abc", "1700000000.5", "-1700000000", " 1700000000", "0x10"])
def test_non_numeric_timestamp_is_refused(ts: str) -> None:
    headers = {"X-Timestamp": ts, "X-Signature": sign(SECRET, BODY, NOW)["X-Signature"]}
    with pytest.raises(SignatureError, match="unix seconds"):
        verify(SECRET, BODY, headers, now=NOW)


@pytest.mark.parametrize("ts", ["²", "1700000000²", "①"])
def test_unicode_digit_lookalikes_are_a_signature_error_not_a_crash(ts: str) -> None:
    # str.isdigit() is True for superscripts and circled digits but int() refuses them:
    # the refusal must still be a SignatureError (401), never a ValueError (500).
    headers = {"X-Timestamp": ts, "X-Signature": "sha256=" + "0" * 64}
    with pytest.raises(SignatureError):
        verify(SECRET, BODY, headers, now=NOW)


@pytest.mark.parametrize("offset", [-301, 301])
def test_timestamp_more_than_300_s_away_is_refused(offset: int) -> None:
    headers = sign(SECRET, BODY, NOW + offset)
    with pytest.raises(SignatureError, match="more than 300 s away"):
        verify(SECRET, BODY, headers, now=NOW)


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamp_within_300_s_passes(offset: int) -> None:
    verify(SECRET, BODY, sign(SECRET, BODY, NOW + offset), now=NOW)


def test_skew_is_configurable() -> None:
    headers = sign(SECRET, BODY, NOW - 30)
    verify(SECRET, BODY, headers, now=NOW, max_skew=30)
    with pytest.raises(SignatureError, match="more than 29 s"):
        verify(SECRET, BODY, headers, now=NOW, max_skew=29)


def test_reasons_never_contain_the_secret_or_the_expected_mac() -> None:
    good = sign(SECRET, BODY, NOW)["X-Signature"]
    headers = sign("wrong", BODY, NOW)
    with pytest.raises(SignatureError) as info:
        verify(SECRET, BODY, headers, now=NOW)
    assert SECRET not in str(info.value)
    assert good.removeprefix("sha256=") not in str(info.value)
