"""``python -m surrogate`` is the ``surrogate`` command (so ``torchrun ... -m surrogate train`` works)."""

import sys

from surrogate.cli import main

sys.exit(main())
