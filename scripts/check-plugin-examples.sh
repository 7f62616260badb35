#!/usr/bin/env bash
# Builds each example of plugin-sdk/examples as a package of its own, outside this repository (a copy in a temp
# directory, the SDK found through AGENTHOST_PLUGIN_SDK, as a plugin author's project would), checks that it
# resolved no package but the SDK and exports its entry symbol alone, then loads all of them into the built host
# and has each route answer. CI runs it (.ci/run) after the tests.
#
# usage: scripts/check-plugin-examples.sh [HOST_BIN_DIR]     (default: `swift build --show-bin-path`, debug)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$(cd "$root" && swift build --show-bin-path)}"
work="$(mktemp -d)"
server=""
cleanup() { if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
mkdir -m 0755 "$work/plugins"

# example directory : product (lib<product>.so)
for example in c-shout:c-shout swift-greeter:greeter async-shout:async-shout agent-route:echo-agent; do
  dir="${example%%:*}"; product="${example##*:}"
  cp -R "$root/plugin-sdk/examples/$dir" "$work/$dir"
  rm -rf "$work/$dir/.build"
  started=$(date +%s)
  (cd "$work/$dir" && AGENTHOST_PLUGIN_SDK="$root/plugin-sdk" swift build -c release --product "$product" >"$work/$dir.log" 2>&1) \
    || { cat "$work/$dir.log"; echo "plugin example $dir: build failed"; exit 1; }
  library="$work/$dir/.build/release/lib$product.so"
  [ -f "$library" ] || { echo "plugin example $dir: no $library"; exit 1; }
  if [ -n "$(ls -A "$work/$dir/.build/checkouts" 2>/dev/null)" ]; then
    echo "plugin example $dir resolved packages besides the SDK: $(ls "$work/$dir/.build/checkouts")"; exit 1
  fi
  functions="$(nm -D --defined-only "$library" | awk '$2 == "T" || $2 == "W" {print $3}')"
  if [ "$functions" != "agenthost_plugin_entry_v1" ]; then
    echo "plugin example $dir exports functions besides its entry: $functions"; exit 1
  fi
  echo "plugin example $dir: built in $(( $(date +%s) - started )) s, $(du -k "$library" | cut -f1) KiB, exports only agenthost_plugin_entry_v1"
  install -m 0755 "$library" "$work/plugins/"
done

out="$work/server.out"
"$bin/agenthost" serve --listen 127.0.0.1:0 --plugins "$work/plugins" --log-level warning >"$out" 2>"$work/server.err" &
server=$!
for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.1; done
grep -q listening "$out" || { cat "$work/server.err"; echo "the host did not start"; exit 1; }
port="$(grep -o '[0-9]*$' "$out")"
exchange() { python3 "$root/scripts/ws-exchange.py" "$port" "$@"; }
exchange /shout "hello" "HELLO"
exchange /greet "Ada" "Hello, Ada!"
exchange /async-shout "quiet please" "QUIET PLEASE"
exchange /agents/echo-agent '{"type":"start","task":"hi there"}' "You said: hi there" '"status":"complete"'
if grep -q "another Swift toolchain\|refused" "$work/server.err"; then cat "$work/server.err"; exit 1; fi
kill -TERM "$server"; wait "$server"; server=""
echo "plugin examples: 4 built outside the repository, loaded and answering"
