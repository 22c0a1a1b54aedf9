"""``python -m pyreg compare ...``: the same as the ``pyreg`` command."""

from __future__ import annotations

from .study.cli import main

raise SystemExit(main())
