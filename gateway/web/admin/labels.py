"""What a clerk reads instead of codes: systems, events, outcomes and statuses by name.

Every label comes from the catalogue (:mod:`gateway.web.admin.i18n`); a code the catalogue
does not know (a system or an event a plugin added) is shown as it is, never as a blank.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.web.admin.i18n import has, translate

#: an answer of the destination that is a refusal on the merits, recorded as a delivery (the
#: message arrived and was answered: no retry can change the answer), shown as a refusal
REFUSED_FROM = 400


def system_label(
    name: str, plugins: Mapping[str, str], lang: str, *, with_code: bool = False
) -> str:
    """``system_<name>`` from the catalogue, else its plugin's label, else the name; with
    ``with_code`` the configured name follows in brackets (for running text)."""
    for key in (f"system_{name}", f"plugin_{plugins.get(name, '')}"):
        if has(key):
            label = translate(lang, key)
            return f"{label} ({name})" if with_code else label
    return name


def event_label(event: str, lang: str) -> str:
    key = f"event_{event}"
    return translate(lang, key) if has(key) else event


def shown_outcome(outcome: str, http_status: int | None) -> str:
    """The outcome as a clerk should see it: a delivery the destination answered with a 4xx
    (a registry's 422 refusal, routed back as a follow-up) is a refusal, not a success."""
    if outcome == "delivered" and http_status is not None and http_status >= REFUSED_FROM:
        return "refused"
    return outcome


def status_label(status: str, lang: str) -> str:
    key = "status_" + status.replace(" ", "_")
    return translate(lang, key) if has(key) else status
