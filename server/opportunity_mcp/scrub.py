"""The one secret scrubber: every text that leaves the process (an answer, an error, a log line)
passes it. It masks the configured secrets and those learned at run time (a login's token) wherever
they appear, but only secrets long enough to be secrets: a short value would mask common words
(a `postgres` password would turn "postgresql" into "[redacted]ql"). Whatever its length, a password
in a URL, a `password=` parameter and a bearer token in an echoed header are masked by their form."""

from __future__ import annotations

import re

MIN_SECRET = 12  # shorter values are masked only by their form (in a URL, after "Bearer")
MASK = "[redacted]"
_FORMS = (
    (re.compile(r"(://[^/\s:@]*:)[^@\s/]+@"), rf"\g<1>{MASK}@"),  # scheme://user:PASSWORD@host
    (re.compile(r"(password=)[^&\s'\"]+", re.IGNORECASE), rf"\g<1>{MASK}"),
    (re.compile(r"(Bearer\s+)[^\s'\",;]+", re.IGNORECASE), rf"\g<1>{MASK}"),
)


class Secrets:
    """The secrets of this process. Adding swaps in a new tuple: readers never lock."""

    def __init__(self) -> None:
        self._values: tuple[str, ...] = ()

    def add(self, *values: str) -> None:
        found = {v for v in values if len(v) >= MIN_SECRET}
        if not found <= set(self._values):
            # Longest first: a secret that contains another is masked whole, not in part.
            self._values = tuple(sorted({*self._values, *found}, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        for pattern, replacement in _FORMS:
            text = pattern.sub(replacement, text)
        for secret in self._values:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


KNOWN = Secrets()


def scrub(text: str) -> str:
    """`text` without any secret this process knows."""
    return KNOWN.scrub(text)
