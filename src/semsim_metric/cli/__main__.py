"""``python -m semsim_metric.cli``."""

import sys

from . import main

sys.exit(main())
