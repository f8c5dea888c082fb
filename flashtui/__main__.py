"""`python -m flashtui`: the same entry point as the `flashtui` console script."""

from flashtui.cli import main

raise SystemExit(main())
