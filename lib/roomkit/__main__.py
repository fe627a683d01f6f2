"""``python -m roomkit`` is the same as the ``roomkit`` command."""
from roomkit.cli import main

raise SystemExit(main())
