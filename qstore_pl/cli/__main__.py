"""``python -m qstore_pl.cli``: the ``qstore-pl`` command."""

import sys

from qstore_pl.cli import main

sys.exit(main())
