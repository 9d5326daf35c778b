"""``python -m distillguard`` runs the CLI."""

import sys

from distillguard.cli import main

sys.exit(main())
