#!/usr/bin/env bash
# The test command: the Python the agent tests need (AutoGen, once), then the build and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/system-packages.sh
./scripts/setup-python.sh
swift build
swift test "$@"
