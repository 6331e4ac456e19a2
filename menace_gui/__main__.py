"""``python -m menace_gui`` opens the desktop monitor."""

import sys

from .app import main

sys.exit(main())
