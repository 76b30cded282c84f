"""``python -m interlock.sdk.cli``."""

import sys

from interlock.sdk.cli import main

sys.exit(main())
