#!/usr/bin/env bash
# The one test command (`npm test`): system packages, formatting and lint,
# type check, then every Vitest suite. Vitest also writes a JSON report to
# test-results/vitest.json, which .ci/run summarises.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the suites need: Chromium for the editor's browser tests
# (scaling will add redis-server and postgresql).
bash scripts/system-deps.sh chromium=chromium

# The browser tests load the editor the server serves; build it if sources changed.
node scripts/build-editor.ts --if-stale

echo "== biome (format + lint)"
biome ci --reporter=summary .
echo "== tsc --noEmit"
tsc --noEmit -p .
echo "== vitest"
mkdir -p test-results
rm -f test-results/vitest.json
vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json "$@"
