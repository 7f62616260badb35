#!/usr/bin/env bash
# Makes .venv-autogen: the Python the autogen-team plugin runs its AutoGen workers with (autogen-agentchat and
# autogen-ext 0.7.5, from PyPI). Does nothing when it is already there. Needs python3 (3.10 or newer) with venv.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=".venv-autogen"
check='import sys, autogen_agentchat, autogen_ext.models.replay; sys.exit(autogen_agentchat.__version__ != "0.7.5")'
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
  exit 0
fi
echo "setup-python: installing autogen-agentchat 0.7.5 into $venv" >&2
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "autogen-agentchat==0.7.5" "autogen-ext==0.7.5"
"$venv/bin/python" -c "$check"
