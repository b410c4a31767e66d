"""The closest valid name to a mistyped one, for error messages that name the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(
    value: object, choices: Iterable[str], template: str = " Did you mean {!r}?"
) -> str:
    """``template`` filled with the choice closest to ``value``; ``""`` if none is close.

    Parameters
    ----------
    value : object
        What the user wrote (compared as text).
    choices : Iterable[str]
        The valid names.
    template : str
        Where the suggestion goes in the message, e.g. ``" (did you mean {!r}?)"``.
    """
    close = difflib.get_close_matches(str(value), list(choices), n=1)
    return template.format(close[0]) if close else ""
