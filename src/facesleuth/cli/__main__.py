"""``python -m facesleuth.cli``: the same command as ``facesleuth``."""

import sys

from facesleuth.cli import main

sys.exit(main())
