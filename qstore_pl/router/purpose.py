"""What a circuit execution is for: development, training or validation.

Backends declare the purposes they serve (``use_for`` in the config); the router only
sends work to backends that serve its purpose, so training stays on simulators while
validation goes to hardware. The purpose is a context variable: it follows the code
that runs inside :func:`purpose`, in this thread or task.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

#: Purposes a call can have, and that ``use_for`` may name. A rehearsal runs the
#: circuits of a hardware job on a local noisy model of the hardware, at no cost.
PURPOSES = ("development", "training", "validation", "rehearsal")
#: The purpose of calls made outside any :func:`purpose` block.
DEFAULT_PURPOSE = "training"

_current: contextvars.ContextVar[str] = contextvars.ContextVar(
    "qstore_purpose", default=DEFAULT_PURPOSE
)


def current_purpose() -> str:
    """The purpose of code running now."""
    return _current.get()


@contextlib.contextmanager
def purpose(name: str) -> Iterator[str]:
    """Mark every circuit run inside the block as being for ``name``.

    Parameters
    ----------
    name : {"development", "training", "validation", "rehearsal"}

    Examples
    --------
    >>> with qstore_pl.purpose("validation"):
    ...     accuracy = evaluate(model, x_val, y_val)  # runs where use_for has "validation"
    """
    if name not in PURPOSES:
        raise ValueError(f"purpose {name!r} is not one of {PURPOSES}")
    token = _current.set(name)
    try:
        yield name
    finally:
        _current.reset(token)
