"""``python -m tricklab`` runs the command line."""

import sys

from tricklab.cli import main

sys.exit(main())
