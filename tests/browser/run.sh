#!/usr/bin/env bash
# Browser tests of the playground page: Debian's headless Chromium (/usr/bin/chromium, or
# $CHROMIUM) driven by npm playwright-core, with node's built-in test runner.
#
#   tests/browser/run.sh BASE_URL        e.g. tests/browser/run.sh http://127.0.0.1:18080
#
# The service must already be running at BASE_URL. Screenshots go to
# ${ARTIFACTS_DIR:-artifacts}/screenshots/ (relative to the directory this is run from).
# The last line is "N passed, M failed"; the exit status is non-zero on any failure.
set -uo pipefail

base="${1:?usage: $0 BASE_URL (e.g. http://127.0.0.1:18080)}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
artifacts="${ARTIFACTS_DIR:-artifacts}"
mkdir -p "$artifacts/screenshots"
screenshots="$(cd "$artifacts/screenshots" && pwd)"

cd "$here" || exit 1
if [ ! -d node_modules ]; then
    if ! npm ci --no-audit --no-fund; then
        echo "npm ci failed"
        echo "0 passed, 1 failed"
        exit 1
    fi
fi

tap="$(mktemp)"
trap 'rm -f "$tap"' EXIT
LOSSLAB_URL="$base" SCREENSHOT_DIR="$screenshots" \
    node --test \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" \
    ./*.test.mjs
status=$?

# node's TAP summary: "# pass N" / "# fail M" (the last ones are the run's totals).
passed="$(grep -E '^# pass [0-9]+' "$tap" | tail -n 1 | awk '{print $3}')"
failed="$(grep -E '^# fail [0-9]+' "$tap" | tail -n 1 | awk '{print $3}')"
passed="${passed:-0}"
failed="${failed:-0}"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    failed=1   # the runner itself failed (a crash before any test reported)
fi
echo "screenshots: $screenshots"
echo "$passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
