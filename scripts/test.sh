#!/usr/bin/env bash
# One command for the whole test suite: set up, type-check, lint, then unit and namespace tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "test: type-check"
npm run --silent typecheck
echo "test: lint"
npm run --silent lint
echo "test: unit and namespace tests"
node scripts/run-tests.js all
