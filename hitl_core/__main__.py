"""Entry point for ``python -m hitl_core``."""
import sys

from hitl_core.cli import main

sys.exit(main())
