"""``python -m study.runner``: the first study's command under its first name (:mod:`study.v1.cli`)."""

import sys

from study.v1.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m study.runner"))
