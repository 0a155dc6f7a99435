"""``python -m baselines.cli``: the same as the ``memory-envs`` command."""

import sys

from baselines.cli import main

sys.exit(main())
