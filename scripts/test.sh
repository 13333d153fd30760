#!/usr/bin/env bash
# The one test command (`npm test`): system packages, formatting and lint,
# type check, then every Vitest suite. Vitest also writes a JSON report to
# test-results/vitest.json, which .ci/run summarises.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the suites need (none yet for the server core; the editor's
# browser tests will add chromium, scaling will add redis-server and postgresql).
bash scripts/system-deps.sh

echo "== biome (format + lint)"
biome ci --reporter=summary .
echo "== tsc --noEmit"
tsc --noEmit -p .
echo "== vitest"
mkdir -p test-results
rm -f test-results/vitest.json
vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json "$@"
