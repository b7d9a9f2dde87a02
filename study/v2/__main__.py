"""``python -m study.v2``: see :mod:`study.v2.cli`."""

import sys

from study.v2.cli import main

sys.exit(main())
