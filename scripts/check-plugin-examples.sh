#!/usr/bin/env bash
# A plugin author's path, for each kind `agenthost new-plugin` makes (C callbacks, Swift callbacks, Swift async, an
# agent route): write the project in a temporary directory outside this repository, run its own tests (the SDK's
# test kit), build its .so against the SDK package alone (checking it resolved nothing else and exports its entry
# alone), load all of them into the built host and have each route answer; then change each one's version,
# rebuild, install it over the old file, SIGHUP, and see new connections answered by the new version. new-plugin
# makes each from plugin-sdk/examples under a new name, so this builds the examples too. CI runs this (.ci/run).
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
# name:lang:kind (names other than the examples': the renaming is part of what is checked)
kinds=(shouter:c:callback welcome:swift:callback loud:swift:async helper:swift:agent)

build() {  # NAME: builds the release .so and installs it (a temporary name, then mv: the loader never sees half a file)
  local name="$1" started
  started=$(date +%s)
  (cd "$work/$name" && swift build -c release --product "$name" >"$work/$name.log" 2>&1) \
    || { cat "$work/$name.log"; echo "plugin $name: build failed"; exit 1; }
  local library="$work/$name/.build/release/lib$name.so"
  local functions
  functions="$(nm -D --defined-only "$library" | awk '$2 == "T" || $2 == "W" {print $3}')"
  [ "$functions" = "agenthost_plugin_entry_v1" ] || { echo "plugin $name exports more than its entry: $functions"; exit 1; }
  if [ -n "$(ls -A "$work/$name/.build/checkouts" 2>/dev/null)" ]; then
    echo "plugin $name resolved packages besides the SDK: $(ls "$work/$name/.build/checkouts")"; exit 1
  fi
  install -m 0755 "$library" "$work/plugins/.$name.so.new" && mv "$work/plugins/.$name.so.new" "$work/plugins/$name.so"
  echo "plugin $name: built in $(( $(date +%s) - started )) s, $(du -k "$library" | cut -f1) KiB, exports only its entry"
}

for spec in "${kinds[@]}"; do
  IFS=: read -r name lang kind <<<"$spec"
  "$bin/agenthost" new-plugin "$name" --lang "$lang" --kind "$kind" --sdk "$root/plugin-sdk" --dir "$work/$name" >/dev/null
  (cd "$work/$name" && swift test >"$work/$name.test.log" 2>&1) \
    || { cat "$work/$name.test.log"; echo "plugin $name: its own tests failed"; exit 1; }
  echo "plugin $name ($lang, $kind): written by new-plugin, its tests pass"
  build "$name"
done

out="$work/server.out"
"$bin/agenthost" serve --listen 127.0.0.1:0 --plugins "$work/plugins" --log-level warning --admin-trust-loopback \
  >"$out" 2>"$work/server.err" &
server=$!
for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.1; done
grep -q listening "$out" || { cat "$work/server.err"; echo "the host did not start"; exit 1; }
port="$(grep -o '[0-9]*$' "$out")"

answers() {  # VERSION: every route answers, from that version
  python3 "$root/scripts/ws-exchange.py" "$port" /shouter "hello" "HELLO (shouter $1)" &&
  python3 "$root/scripts/ws-exchange.py" "$port" /welcome "Ada" "Hello, Ada! (welcome $1)" &&
  python3 "$root/scripts/ws-exchange.py" "$port" /loud "quiet" "QUIET (loud $1)" &&
  python3 "$root/scripts/ws-exchange.py" "$port" /agents/helper '{"type":"start","task":"hi there"}' \
    "You said: hi there (helper $1)" '"status":"complete"'
}
answers 1.0.0
# GET /plugins names the host's Swift toolchain, and each Swift plugin's (the same); a C plugin has none.
curl -fsS "http://127.0.0.1:$port/plugins" | python3 -c '
import json, sys
report = json.load(sys.stdin)
host = report["host"]["swift_toolchain"]
toolchains = {p["name"]: p.get("swift_toolchain") for p in report["plugins"] if p["state"] == "serving"}
assert host and toolchains == {"shouter": None, "welcome": host, "loud": host, "helper": host}, (host, toolchains)
print("GET /plugins: the Swift plugins were built with the host toolchain; the C plugin has none")'

# A changed version of each, hot-reloaded.
for spec in "${kinds[@]}"; do
  IFS=: read -r name _ _ <<<"$spec"
  files="$(grep -rl '1\.0\.0' "$work/$name/Sources" || true)"
  [ -n "$files" ] || { echo "plugin $name: no version 1.0.0 in its sources to change"; exit 1; }
  echo "$files" | xargs sed -i 's/1\.0\.0/1.0.1/'
  build "$name"
done
kill -HUP "$server"
for _ in $(seq 50); do WS_EXCHANGE_SECONDS=1 answers 1.0.1 >/dev/null 2>&1 && break; sleep 0.2; done
answers 1.0.1
if grep -q "another Swift toolchain\|refused" "$work/server.err"; then cat "$work/server.err"; exit 1; fi
kill -TERM "$server"; wait "$server"; server=""
echo "plugin projects: 4 kinds written by new-plugin, tested, built outside the repository, loaded, answering, hot-reloaded"
