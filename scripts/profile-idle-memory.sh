#!/usr/bin/env bash
# Where an idle WebSocket's bytes go: runs the release `agenthost` under heaptrack (Debian's heaptrack package),
# holds COUNT idle connections to ROUTE (ws or wss) open for a few seconds, stops the server, and prints the
# allocation sites that held the most memory at the peak (all connections open).
#
# usage: scripts/profile-idle-memory.sh [ws|wss] [COUNT] [ROUTE]     (defaults: wss 2000 /echo)
# Build first: swift build -c release --product agenthost && swift build -c release --product agenthost-echo
set -euo pipefail
scheme="${1:-wss}"; count="${2:-2000}"; route="${3:-/echo}"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$(cd "$root" && swift build -c release --show-bin-path)"
work="$(mktemp -d)"
trap '[ -n "${KEEP_PROFILE:-}" ] && cp "$work"/profile.*zst "$KEEP_PROFILE"; rm -rf "$work"' EXIT
mkdir -m 755 "$work/plugins"
install -m 755 "$bin/libagenthost-echo.so" "$work/plugins/echo.so"
# The agent route (/agents/native), when its plugin is built.
[ -f "$bin/libagenthost-native-agent.so" ] && install -m 755 "$bin/libagenthost-native-agent.so" "$work/plugins/"
tls=()
if [ "$scheme" = wss ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$work/key.pem" \
    -out "$work/cert.pem" -days 1 -subj /CN=localhost 2>/dev/null
  tls=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
fi
heaptrack -o "$work/profile" "$bin/agenthost" serve --listen 127.0.0.1:0 --plugins "$work/plugins" \
  --baseline-echo-route /_baseline/echo --event-loops 1 --max-connections-per-address 0 --log-level warning \
  "${tls[@]}" > "$work/out" 2> "$work/err" &
wrapper=$!
for _ in $(seq 100); do grep -q "listening on" "$work/out" 2>/dev/null && break; sleep 0.2; done
port="$(grep -o '[0-9]*$' "$work/out" | head -1)"
python3 "$root/scripts/hold-idle-websockets.py" "$port" "$count" "$route" "$([ "$scheme" = wss ] && echo 1 || echo 0)" 3
# heaptrack's wrapper script runs the server as its child: stop that process, by its pid.
server="$(pgrep -P "$wrapper" -x agenthost)"  # heaptrack also runs heaptrack_interpret
echo "stopping the server (pid $server)"
kill -TERM "$server"
wait "$wrapper" || true
heaptrack_print -f "$work"/profile.*zst 2>/dev/null | grep -E "peak heap memory consumption|peak RSS"
heaptrack_print -f "$work"/profile.*zst --print-peaks 1 --print-allocators 0 --print-temporary 0 --print-leaks 0 \
  --peak-limit 12 2>/dev/null \
  | awk '/peak memory consumed over/ {head=$0; next}
         /^ +at / && head != "" && $0 !~ /compiler-generated|<stdin>/ {print head " at " $2; head=""}'
