#!/usr/bin/env bash
# The system libraries the build links: SQLite (the run log's store, through GRDB) and LZ4 (its chunk compression).
# Installs their Debian packages when missing and this runs as root; otherwise says which to install.
set -euo pipefail
need=()
[ -f /usr/include/sqlite3.h ] || pkg-config --exists sqlite3 2>/dev/null || need+=(libsqlite3-dev)
[ -f /usr/include/lz4.h ] || pkg-config --exists liblz4 2>/dev/null || need+=(liblz4-dev)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "system-packages: installing ${need[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
else
  echo "system-packages: the build needs ${need[*]} (Debian/Ubuntu: sudo apt-get install ${need[*]})" >&2
  exit 1
fi
