"""``python -m tests.soak`` (``make soak``): the long chaos soak."""

from tests.soak.engine import main

raise SystemExit(main())
