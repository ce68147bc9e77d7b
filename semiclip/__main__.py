"""``python -m semiclip``: the same as the ``semiclip`` command."""

import sys

from .cli import main

sys.exit(main())
