#!/usr/bin/env bash
# Builds AgentHost and its example plugins (release), installs the plugins into a private directory, sets up the
# Python that runs AutoGen teams, and serves everything on 127.0.0.1:8080 (override with --listen HOST:PORT; any
# other `agenthost serve` flag passes through).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/system-packages.sh
swift build -c release --product agenthost
swift build -c release --product agenthost-echo
swift build -c release --product agenthost-chat
swift build -c release --product agenthost-wordstream
swift build -c release --product agenthost-native-agent
swift build -c release --product agenthost-autogen-team
bin="$(swift build -c release --show-bin-path)"
./scripts/setup-python.sh

# The host refuses plugin files and directories that others can write: install them 0755 in a 0755 directory.
plugins=".build/plugins"
install -d -m 0755 "$plugins"
install -m 0755 "$bin/libagenthost-echo.so" "$bin/libagenthost-chat.so" "$bin/libagenthost-wordstream.so" \
  "$bin/libagenthost-native-agent.so" "$bin/libagenthost-autogen-team.so" "$plugins/"

# The example config unless the caller brings their own.
config=(--config examples/agenthost.json)
for argument in "$@"; do [ "$argument" = "--config" ] && config=(); done
exec "$bin/agenthost" serve --plugins "$plugins" "${config[@]}" "$@"
