"""``python -m sim``: the ``lfrsim`` command without the console script."""

import sys

from .cli import main

sys.exit(main())
