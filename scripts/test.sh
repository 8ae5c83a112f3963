#!/usr/bin/env bash
# One command: set up (Python packages, PostgreSQL, Chromium) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/system_deps.sh test
export MAILLAGE_REQUIRE_PG="${MAILLAGE_REQUIRE_PG:-1}"
export MAILLAGE_REQUIRE_BROWSER="${MAILLAGE_REQUIRE_BROWSER:-1}"
echo "==> ruff"
.venv/bin/ruff check maillage tests benchmarks scripts
echo "==> pytest"
exec .venv/bin/python -m pytest "$@"
