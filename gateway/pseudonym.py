"""Keyed pseudonyms: what stands for a personal number (a CCCD) wherever the gateway needs a
stable key, reference or label — dedupe ids, dossier keys, refs, file names, metric labels —
so that none of them holds the number itself.

``pseudonym("006135001234")`` is ``********1234-`` followed by 16 letters (``a``-``p``: the
64 first bits of HMAC-SHA256 under the store's key, one letter per 4 bits): the last four
digits (what clerks already see in masked previews) make it readable, the keyed hash makes it
unique and stable, and without the key it cannot be reversed (a bare hash of a 12-digit
number is reversed by trying them all). Letters, not hex digits, so that no run of digits in
a key ever looks like a CCCD or a phone number to the masking of pages and logs.

The key is random, made once per database (``gateway_keys``, migration 0004) and installed
by every process that opens the store for traffic (:func:`install_key`), so every node and
every restart derives the same pseudonym for the same number — dedupe and ordering keep
working. A process that never installed one (a unit test parsing a document) uses a random
key of its own: stable within the process, unlike any database's.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

#: name of the key in the store's ``gateway_keys`` table
KEY_NAME = "cccd-pseudonym"
HASH_DIGITS = 16
_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")

_key: bytes = secrets.token_bytes(32)
_installed = False


def install_key(hex_key: str) -> None:
    """Use the store's key (64 hex digits) from now on, in this process."""
    global _key, _installed
    _key = bytes.fromhex(hex_key)
    _installed = True


def key_installed() -> bool:
    return _installed


def digest(value: str, purpose: str = "id") -> str:
    """16 letters ``a``-``p`` of HMAC-SHA256(key, purpose:value)."""
    mac = hmac.new(_key, f"{purpose}:{value}".encode(), hashlib.sha256)
    return mac.hexdigest()[:HASH_DIGITS].translate(_LETTERS)


def pseudonym(number: str, purpose: str = "id") -> str:
    """What stands for a CCCD in a key, reference or label: ``006135001234`` →
    ``********1234-dpjkamboncpeflgb`` (the last four digits and a keyed hash under the
    store's key: stable on every node and restart, not reversible without the key)."""
    masked = "*" * max(len(number) - 4, 0) + number[-4:]
    return f"{masked}-{digest(number, purpose)}"


_NUMBER = re.compile(r"(?<![0-9A-Za-z*])[0-9]{12}(?![0-9A-Za-z])")


def pseudonymise_key(text: str) -> str:
    """A key as a person types it (``02083:006135001234``) → the key as stored
    (``02083:********1234-…``): for looking up what was stored under a pseudonym."""
    return _NUMBER.sub(lambda m: pseudonym(m.group(0)), text)
