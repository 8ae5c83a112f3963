#!/usr/bin/env bash
# One command: set up, build the observatory on the embedded default data, serve the web app.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/system_deps.sh runtime
.venv/bin/maillage build
exec .venv/bin/maillage serve "$@"
