"""`python -m netdetect` is the `netdetect` command."""

import sys

from netdetect.cli import main

sys.exit(main())
