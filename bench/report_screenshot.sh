#!/usr/bin/env bash
# Render `cascade-batch report --html` in headless Chromium and save a screenshot, to check the page
# draws offline. Needs Debian's chromium (apt-get install chromium). Usage: bench/report_screenshot.sh [OUT.png]
set -euo pipefail
cd "$(dirname "$0")/.."
png="${1:-bench/results/report.png}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
.venv/bin/cascade-batch run samples/queries.jsonl -o "$tmp/out.jsonl" --simulate --quiet --sim-latency-ms 0
.venv/bin/cascade-batch report "$tmp/out.jsonl" --html "$tmp/report.html" --quiet
mkdir -p "$(dirname "$png")"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$tmp/profile" --window-size=1000,1100 \
  --screenshot="$png" "file://$tmp/report.html" 2>/dev/null
echo "screenshot: $png"
