#!/usr/bin/env bash
# The one test command (`npm test`): system packages, formatting and lint,
# type check, then every Vitest suite. Vitest also writes a JSON report to
# test-results/vitest.json, which .ci/run summarises.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the suites need: Chromium for the editor's browser tests;
# PostgreSQL, Redis and nginx for the scale-out tests (started by the tests
# themselves on free loopback ports, never as system services); openssl makes the TLS tests' certificates.
bash scripts/system-deps.sh chromium=chromium pg_ctlcluster=postgresql redis-server=redis-server nginx=nginx openssl=openssl

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
