"""``python -m study.report``: the first study's report alone (:mod:`study.v1.report`)."""

import sys

from study.v1.report import main

if __name__ == "__main__":
    sys.exit(main())
