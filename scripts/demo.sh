#!/usr/bin/env bash
# One command for the main job: set up, then run `tproxy demo` (root, network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node bin/tproxy.js demo "$@"
