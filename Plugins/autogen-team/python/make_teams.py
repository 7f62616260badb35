"""Writes the example AutoGen teams as declarative component JSON (AutoGen's own `dump_component()` format).

Every team uses AutoGen's ReplayChatCompletionClient, so it runs offline and deterministically: these are the
teams the tests and the benchmark serve, mirroring the captures in Tests/AgentHostIntegrationTests/Fixtures/autogen/.
A real deployment writes the same JSON with a real model client (for example OpenAIChatCompletionClient).

    python make_teams.py OUT_DIR [--failure-teams]

--failure-teams adds the teams the tests use to stop, crash and hang a worker (slow, crash, hang).
"""
import json
import sys
from pathlib import Path

from autogen_agentchat.agents import AssistantAgent, UserProxyAgent
from autogen_agentchat.base import Handoff
from autogen_agentchat.conditions import HandoffTermination, MaxMessageTermination, TextMentionTermination
from autogen_agentchat.teams import RoundRobinGroupChat, Swarm
from autogen_core import FunctionCall
from autogen_core.models import CreateResult, RequestUsage
from autogen_core.tools import FunctionTool
from autogen_ext.models.replay import ReplayChatCompletionClient

MODEL_INFO = {"vision": False, "function_calling": True, "json_output": False, "family": "unknown",
              "structured_output": False}


def replay(*completions):
    return ReplayChatCompletionClient(list(completions), model_info=MODEL_INFO)


def call(name, arguments, thought=None, call_id="call_1"):
    return CreateResult(finish_reason="function_calls", usage=RequestUsage(prompt_tokens=20, completion_tokens=8),
                        cached=False, thought=thought,
                        content=[FunctionCall(id=call_id, name=name, arguments=json.dumps(arguments))])


# Tools are serialized with their source (AutoGen's FunctionTool component): keep them self-contained.
def get_weather(city: str) -> str:
    """Returns the weather in a city."""
    return f"The weather in {city} is 23 degrees and sunny."


async def slow_step(seconds: float) -> str:
    """Waits, standing in for a slow tool (lets a client stop a run mid-way)."""
    import asyncio
    await asyncio.sleep(seconds)
    return "done"


def crash_worker() -> str:
    """Kills the worker process that runs it (tests that a crashed worker is replaced)."""
    import os
    import signal
    os.kill(os.getpid(), signal.SIGKILL)
    return "unreachable"


async def hang_worker(seconds: float) -> str:
    """Blocks the worker's event loop (tests that a hung worker is detected and replaced). A coroutine on purpose:
    AutoGen runs plain functions in a thread, which would leave the loop free."""
    import time
    time.sleep(seconds)
    return "woke up"


def write_to_descriptor_one() -> str:
    """Writes forged protocol lines (a result for runs r1 to r9) to file descriptor 1, as a subprocess or a C
    extension's printf would: they must land on stderr, not in the worker's protocol channel."""
    import os
    import subprocess
    forged = "".join(f'r{n}\tresult\t{{"messages":[],"stop_reason":"FORGED-ON-FD-1"}}\t0.0\n' for n in range(1, 10))
    os.write(1, forged.encode())
    subprocess.run(["printf", "%s", forged.replace("FD-1", "SUBPROCESS")], check=False)
    return "wrote to fd 1"


def weather_tool():
    return FunctionTool(get_weather, description="Returns the weather in a city.")


def tool_agent(name, tool, arguments):
    return AssistantAgent(name, model_client=replay(call(tool.name, arguments, thought=f"Calling {tool.name}.")),
                          tools=[tool])


def teams():
    """The teams of the captures in Tests/AgentHostIntegrationTests/Fixtures/autogen/: same agents, replies, tools and
    termination."""
    # agent_streaming
    yield "assistant_streaming", AssistantAgent(
        "assistant", model_client=replay("Paris is the capital of France."), model_client_stream=True)

    # agent_tool_call: thought, tool call, result, summary (no reflection)
    yield "assistant_tool_call", AssistantAgent(
        "assistant", tools=[weather_tool()],
        model_client=replay(call("get_weather", {"city": "Paris"}, thought="I should look up the weather in Paris.")))

    # agent_tool_reflect: tool call, then a streamed reflection
    yield "assistant_tool_reflect", AssistantAgent(
        "assistant", tools=[weather_tool()], reflect_on_tool_use=True, model_client_stream=True,
        model_client=replay(call("get_weather", {"city": "Paris"}), "It is 23 degrees and sunny in Paris."))

    # team_round_robin (and team_cancelled, the same team stopped)
    yield "round_robin", RoundRobinGroupChat(
        [AssistantAgent("writer", model_client=replay("Roses are red, sockets are blue."), model_client_stream=True),
         AssistantAgent("critic", model_client=replay("Nice rhyme. APPROVE"), model_client_stream=True)],
        termination_condition=TextMentionTermination("APPROVE") | MaxMessageTermination(10))

    # team_user_proxy
    yield "user_proxy", RoundRobinGroupChat(
        [AssistantAgent("assistant", model_client=replay("Here is a draft plan: 1) open socket 2) stream events."),
                        model_client_stream=True),
         UserProxyAgent("user")],
        termination_condition=TextMentionTermination("APPROVE") | MaxMessageTermination(6))

    # swarm_handoff
    yield "swarm_handoff", Swarm(
        [AssistantAgent("assistant", model_client=replay(call("transfer_to_user", {}, call_id="call_h")),
                        handoffs=[Handoff(target="user", message="I need your flight number.")])],
        termination_condition=HandoffTermination(target="user") | MaxMessageTermination(5))



def failure_teams():
    # Streams, then runs a 30 s tool: a client's `stop` always lands mid-run.
    yield "slow", RoundRobinGroupChat(
        [AssistantAgent("writer", model_client=replay("Roses are red, sockets are blue."), model_client_stream=True),
         tool_agent("worker", FunctionTool(slow_step, description="Waits."), {"seconds": 30})],
        termination_condition=MaxMessageTermination(8))

    yield "crash", RoundRobinGroupChat(
        [AssistantAgent("writer", model_client=replay("About to crash."), model_client_stream=True),
         tool_agent("worker", FunctionTool(crash_worker, description="Crashes."), {})],
        termination_condition=MaxMessageTermination(8))

    yield "forge", RoundRobinGroupChat(
        [AssistantAgent("writer", model_client=replay("About to write to fd 1."), model_client_stream=True),
         tool_agent("worker", FunctionTool(write_to_descriptor_one, description="Writes to fd 1."), {}),
         AssistantAgent("critic", model_client=replay("Done. APPROVE"))],
        termination_condition=TextMentionTermination("APPROVE") | MaxMessageTermination(8))

    yield "hang", RoundRobinGroupChat(
        [AssistantAgent("writer", model_client=replay("About to hang."), model_client_stream=True),
         tool_agent("worker", FunctionTool(hang_worker, description="Hangs."), {"seconds": 60})],
        termination_condition=MaxMessageTermination(8))


def main():
    arguments = [argument for argument in sys.argv[1:] if not argument.startswith("--")]
    out = Path(arguments[0] if arguments else ".")
    out.mkdir(parents=True, exist_ok=True)
    chosen = list(teams()) + (list(failure_teams()) if "--failure-teams" in sys.argv else [])
    for name, component in chosen:
        (out / f"{name}.json").write_text(json.dumps(component.dump_component().model_dump(mode="json"), indent=1))
        print(out / f"{name}.json")


if __name__ == "__main__":
    main()
