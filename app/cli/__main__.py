"""``python -m app.cli``: the ``tailcast`` command."""

import sys

from app.cli import main

sys.exit(main())
