"""``python -m minibng.audit``: see :mod:`minibng.audit.cli`."""
import sys

from .cli import main

sys.exit(main())
