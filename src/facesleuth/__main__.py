"""``python -m facesleuth``: the ``facesleuth`` command."""

import sys

from facesleuth.cli import main

sys.exit(main())
