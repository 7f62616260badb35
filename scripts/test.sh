#!/usr/bin/env bash
# The test command: the Python the agent tests need (AutoGen, once), then the build, every test, and the plugin
# projects' check.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/system-packages.sh
./scripts/setup-python.sh
swift build
swift test "$@"
# A plugin author's path for each kind `agenthost new-plugin` makes, outside this repository (about 2 minutes):
# skipped when the run was narrowed to some tests.
if [ $# -eq 0 ]; then ./scripts/check-plugin-examples.sh; fi
