#!/usr/bin/env bash
# The agent-route benchmark: native-agent and autogen-team against AutoGen Studio 0.4.2.2 serving the same replay
# team, all in one run. Installs what it needs: the AutoGen venv (scripts/setup-python.sh) and, for the baseline,
# .venv-studio with autogenstudio 0.4.2.2 (from PyPI, as the fixtures' captures were made: --no-deps over AutoGen
# 0.7.5 plus Studio's own dependencies). Arguments pass through to agenthost-agent-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/system-packages.sh
./scripts/setup-python.sh

studio=".venv-studio"
if ! "$studio/bin/python" -c 'import autogenstudio.web.app' >/dev/null 2>&1; then
  echo "bench-agents: installing autogenstudio 0.4.2.2 into $studio (the baseline)" >&2
  python3 -m venv "$studio"
  "$studio/bin/pip" install --quiet --disable-pip-version-check "autogen-agentchat==0.7.5" \
    "autogen-ext[openai,azure,magentic-one]==0.7.5"
  "$studio/bin/pip" install --quiet --disable-pip-version-check --no-deps "autogenstudio==0.4.2.2"
  "$studio/bin/pip" install --quiet --disable-pip-version-check pydantic pydantic-settings "fastapi[standard]" typer \
    aiofiles python-dotenv websockets sqlmodel psycopg alembic loguru pyyaml html2text anthropic httpx tiktoken
  "$studio/bin/python" -c 'import autogenstudio.web.app'
fi

swift build -c release --product agenthost
swift build -c release --product agenthost-native-agent
swift build -c release --product agenthost-autogen-team
swift build -c release --product agenthost-agent-bench
exec "$(swift build -c release --show-bin-path)/agenthost-agent-bench" "$@"
