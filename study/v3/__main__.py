import sys

from study.v3.cli import main

sys.exit(main())
