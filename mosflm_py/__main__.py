"""``python -m mosflm_py`` runs the MOSFLM command interpreter."""

from mosflm_py.cli import main

raise SystemExit(main())
