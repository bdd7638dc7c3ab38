"""`python -m cascade_batch`."""

from .cli import main

raise SystemExit(main())
