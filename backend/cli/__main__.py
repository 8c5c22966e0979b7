"""``python -m partdistill.backend.cli ...`` is ``partdistill ...``."""

import sys

from . import main

sys.exit(main())
