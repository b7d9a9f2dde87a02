"""``python -m study.v1``: see :mod:`study.v1.cli`."""

import sys

from study.v1.cli import main

sys.exit(main())
