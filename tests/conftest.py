"""Suite-wide settings.

Routing tests assert which backend the router picks from the built-in time models,
so the suite runs with calibration off unless a test turns it on (the calibration
tests do, in a temporary cache directory). Nothing is written to the user's cache
or spending ledger.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("QSTORE_CALIBRATION", "off")
os.environ.setdefault("QSTORE_CACHE_DIR", tempfile.mkdtemp(prefix="qstore-test-cache-"))
os.environ.setdefault(
    "QSTORE_LEDGER", os.path.join(tempfile.mkdtemp(prefix="qstore-test-ledger-"), "spending.sqlite")
)
