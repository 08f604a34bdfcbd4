"""``python -m qc --cmake-dir``: where qc's CMake package lives, for ``-Dqc_DIR=...``."""

from .tools.qc_config import main

raise SystemExit(main())
