"""`python -m computehub_tui` runs the command line."""

import sys

from computehub_tui.cli import main

sys.exit(main())
