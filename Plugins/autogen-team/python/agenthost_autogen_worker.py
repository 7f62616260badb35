"""One AutoGen worker process of the autogen-team plugin: runs AutoGen teams and streams their events.

The plugin starts a pool of these and speaks JSON lines with each over stdin/stdout. One worker runs many runs at
once on its asyncio loop (an AutoGen run mostly awaits its model client), so a pool of a few processes keeps
every core busy without a process per run.

Plugin -> worker, one JSON object per line:
  {"op": "team", "key": K, "config": {...}}            a declarative AutoGen component (team or agent), kept by key;
                                                        answered with a team line once it loaded (or failed to)
  {"op": "start", "run": R, "task": T, "key": K}       run the team K on task T (or "config": {...} inline)
  {"op": "stop", "run": R, "reason": "..."}             cancel the run's CancellationToken
  {"op": "input", "run": R, "request_id": Q, "response": "..."}   answer a UserProxyAgent
  {"op": "ping", "n": N}                                liveness: answered with {"pong": N} from the event loop

Worker -> plugin: tab-separated lines, so AutoGen's JSON passes through the plugin byte for byte (json.dumps
never writes a raw tab). R is the plugin's id for the run; JSON means one JSON value.
  ready<TAB>{"pid": P}
  team<TAB>KEY<TAB>ok                         the team K (a JSON string) is valid and loads
  team<TAB>KEY<TAB>error<TAB>MESSAGE          it does not: why (a JSON string)
  pong<TAB>N
  R<TAB>event<TAB>JSON                        one AutoGen event, item.dump(), in stream order
  R<TAB>chunk<TAB>JSON                        a ModelClientStreamingChunkEvent, item.dump(), in stream order
  R<TAB>input_request<TAB>ID<TAB>PROMPT<TAB>JSON   a UserInputRequestedEvent: its request_id and the prompt (JSON
                                              strings) and the event (dump), in stream order
  R<TAB>result<TAB>JSON<TAB>SECONDS           the TaskResult (model_dump) and the run's duration
  R<TAB>cancelled<TAB>REASON                  the run was stopped (a JSON string)
  R<TAB>error<TAB>MESSAGE                     the run failed: a bad team, a tool that raised, a task AutoGen
                                              refuses or an image over the limits (a JSON string)

stdout carries only these lines: anything a team prints goes to stderr, which the plugin logs line by line.

Client input never ends the worker: a task is parsed and checked inside its run (a bad one ends that run with an
error line), images are checked from their headers before anything decodes them (image_limits.py: its own reader
and Pillow's must agree, so the size counted is the size decoded), and decoding
(and re-encoding for the event stream) happens on one thread per worker, one image at a time, so the event loop
keeps serving every other run and answering pings while a large image is worked on. A stopped run lets go of its
images (in the worker's pixel budget) only when its decode has really ended, as a thread cannot be cancelled; the
freed heap is then given back to the system (malloc_trim). Error text for clients carries no heap addresses.

Arguments: --max-image-bytes N --max-image-pixels N --max-task-image-pixels N --max-worker-image-pixels N (the
plugin passes its config). The last bounds the images all live runs of the worker hold at once: AutoGen keeps a
decoded copy for the whole run, so without it many small image tasks at once would add up without limit.
"""
import argparse
import asyncio
import concurrent.futures
import ctypes
import gc
import json
import logging
import os
import re
import sys
import time
import traceback
import warnings

from autogen_agentchat.agents import UserProxyAgent
from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import MessageFactory, ModelClientStreamingChunkEvent, UserInputRequestedEvent
from autogen_core import (EVENT_LOGGER_NAME, CancellationToken, ComponentLoader, ComponentModel,
                          SingleThreadedAgentRuntime)
from PIL import Image as PILImage

from image_limits import ImageLimits

# Keep the protocol channel clean: everything else written to stdout goes to stderr. Not only Python's sys.stdout:
# descriptor 1 itself becomes stderr, so a tool's subprocess or a C extension's printf (which write to fd 1) cannot
# put bytes into the protocol channel (forged result lines for any run, or a line with no end).
_protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1 << 16)
os.dup2(sys.stderr.fileno(), 1)
sys.stdout = sys.stderr

# AutoGen's runtime serializes every message it publishes, eagerly, for its event log (and tracing attributes),
# on the event loop, whether or not anyone listens: an image in a message is encoded as PNG again each time (seconds
# for a few megapixels, several times a run), while every other run on the worker and its pings wait. The worker
# configures neither that logger nor a tracer, so the text is skipped unless the event logger would print it.
_serialize_for_log = getattr(SingleThreadedAgentRuntime, "_try_serialize", None)


def _serialize_if_logged(runtime, message):
    if not logging.getLogger(EVENT_LOGGER_NAME).isEnabledFor(logging.INFO):
        return "(not serialized: the event log is off)"
    return _serialize_for_log(runtime, message)


# A private method of autogen-core 0.7 (scripts/setup-python.sh pins the version): patched only where it exists.
if callable(getattr(SingleThreadedAgentRuntime, "_try_serialize", None)):
    SingleThreadedAgentRuntime._try_serialize = _serialize_if_logged

# Teams come from the operator's config file (client-sent teams are off unless the operator allows them), so
# AutoGen's warning that loading a FunctionTool executes its code would be repeated on every run for nothing.
warnings.filterwarnings("ignore", category=UserWarning, module="autogen_core._component_config")

# Pillow's bomb check warns over Image.MAX_IMAGE_PIXELS and raises only over twice that: a warning is an error here.
warnings.simplefilter("error", PILImage.DecompressionBombWarning)

DEFAULT_PROMPT = "Enter your response: "
# The longest command line read from the plugin (WorkerPool.maxCommandBytes says the same).
MAX_COMMAND_BYTES = 64 << 20


_flush_scheduled = False


def _flush():
    global _flush_scheduled
    _flush_scheduled = False
    _protocol_out.flush()


def as_json(value):
    return json.dumps(value, separators=(",", ":"))


def emit(*fields):
    """Queues one line; lines written in the same loop iteration leave in one write (one pipe wake-up)."""
    global _flush_scheduled
    _protocol_out.write("\t".join(fields) + "\n")
    if not _flush_scheduled:
        _flush_scheduled = True
        asyncio.get_running_loop().call_soon(_flush)


def client_text(text):
    """Text as the client may read it: without the heap addresses Python's reprs carry
    ("<_io.BytesIO object at 0x7f68ac5294e0>"). The full text goes to stderr, which only the operator reads."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


try:
    _libc = ctypes.CDLL("libc.so.6")
except OSError:  # not glibc: nothing to trim
    _libc = None


def give_back_memory():
    """Returns freed heap to the system. A decoded image is freed in blocks that glibc keeps in its arenas (the
    image thread's arena most of all), so a worker stayed hundreds of MB large after its image runs had ended."""
    if _libc is not None and hasattr(_libc, "malloc_trim"):
        gc.collect()  # AutoGen's messages can sit in reference cycles
        _libc.malloc_trim(0)


_TRIM_DELAY = 1.0


def task_of(value):
    """A task as AutoGen takes it: text, or a message (or list of messages) in its dumped form."""
    if isinstance(value, dict):
        return MessageFactory().create(value)
    if isinstance(value, list):
        return [MessageFactory().create(item) if isinstance(item, dict) else item for item in value]
    return value


class WorkerFull(Exception):
    """A run refused because the worker's live runs hold as many images as it may (not the client's fault)."""


class Run:
    def __init__(self, run_id):
        self.id = run_id
        self.token = CancellationToken()
        self.task = None
        self.inputs = {}   # request_id -> Future[str]
        self.prompts = {}  # request_id -> Future[str]: the prompt UserProxyAgent passed to its input function
        self.finished = False
        self.images = 0  # its task's images, in pixels: their (re)encoding goes off the loop

    def future(self, table, request_id):
        if request_id not in table:
            table[request_id] = asyncio.get_running_loop().create_future()
        return table[request_id]

    async def input_func(self, prompt, cancellation_token=None):
        request_id = UserProxyAgent.InputRequestContext.request_id()
        prompt_future = self.future(self.prompts, request_id)
        if not prompt_future.done():
            prompt_future.set_result(prompt)
        return await self.future(self.inputs, request_id)


class Worker:
    def __init__(self, limits):
        self.teams = {}
        self.runs = {}
        self.limits = limits
        # The images the runs hold, decoded, in pixels (see ImageLimits): charged when a run's task is parsed, let go
        # of when its asyncio task ends (not at its terminal line: a stopped run's decode may still be running).
        self.image_pixels = 0
        # One image decode (or re-encode) at a time per worker, on a thread of its own: each costs up to ~7 bytes a
        # pixel for a moment, and a worker's runs share one process. Not the loop's default executor, which runs up
        # to min(32, cores + 4) at once.
        self.image_thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="image-work")
        self.trim_scheduled = False

    def schedule_trim(self):
        """Gives freed heap back a second after an image run ended, once for all the runs that end meanwhile:
        gc.collect and malloc_trim take tens to hundreds of ms, and ran on the event loop after every image run,
        back to back in a burst, delaying every run and pong. Now at most once a second, on the image thread behind
        any image work (ctypes lets go of the GIL around malloc_trim; gc.collect holds it, as any collection)."""
        if self.trim_scheduled:
            return
        self.trim_scheduled = True

        def trim():
            self.trim_scheduled = False
            self.image_thread.submit(give_back_memory)

        asyncio.get_running_loop().call_later(_TRIM_DELAY, trim)

    async def parse_task(self, run, value):
        """The client's task as AutoGen takes it; ValueError (ImageRefused, pydantic's) for one it refuses,
        WorkerFull while the live runs hold as many images as the worker may."""
        pixels = self.limits.check(value)
        if not pixels:
            return task_of(value)
        if self.image_pixels + pixels > self.limits.max_worker_pixels:
            raise WorkerFull(f"this AutoGen worker's runs already hold {self.image_pixels} pixels of images (the "
                             f"limit is {self.limits.max_worker_pixels}): try again when runs have ended")
        self.image_pixels += pixels
        run.images = pixels
        return await self.off_loop(task_of, value)

    async def off_loop(self, function, *arguments):
        """Image work, on the image thread (Pillow lets go of the GIL while it codes pixels), one at a time.

        A thread cannot be cancelled. When the run is stopped, work that has not started is dropped, and work that
        has is waited for before the cancellation goes on: the run's task, and so its pixel charge, lasts as long as
        the decode. (Before, the charge went at once while the decode ran on, and a loop of start and stop ran
        many 16 Mpx decodes at once.)
        """
        work = self.image_thread.submit(function, *arguments)
        done = asyncio.wrap_future(work)
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError as cancelled:
            if not work.cancel():  # running (or just finished): wait for the thread
                while not done.done():
                    try:
                        await asyncio.wait([done])
                    except asyncio.CancelledError:
                        pass  # stop() cancels again until the task ends
            raise cancelled

    async def dumped(self, run, item):
        """item.dump(): an image in it is encoded as PNG again, which is slow for a large one: off the loop."""
        return await self.off_loop(item.dump) if run.images else item.dump()

    def load(self, config, run):
        team = ComponentLoader.load_component(config)
        # A UserProxyAgent from JSON has no input function (AutoGen cannot serialize one): answer through the
        # plugin. Studio does the same. Participants of nested teams are walked too.
        pending = [team]
        while pending:
            node = pending.pop()
            if isinstance(node, UserProxyAgent):
                node.input_func = run.input_func
                node._is_async = True
            pending.extend(getattr(node, "_participants", []) or [])
        return team

    async def run(self, run, task_json, config):
        started = time.monotonic()
        try:
            try:
                task = await self.parse_task(run, task_json)
            except ValueError as error:  # pydantic's ValidationError is one
                print(f"worker: run {run.id}: refused its task: {type(error).__name__}: {error}", file=sys.stderr)
                self.finish(run, "error", as_json(client_text(f"invalid task: {error}")))
                return
            except WorkerFull as error:
                self.finish(run, "error", as_json(str(error)))
                return
            team = self.load(config, run)
            result = None
            async for item in team.run_stream(task=task, cancellation_token=run.token):
                if run.finished:
                    break  # stopped: nothing more is reported
                if isinstance(item, TaskResult):
                    result = item
                elif isinstance(item, UserInputRequestedEvent):
                    # In stream order, after every earlier chunk. The prompt is what the agent passes to its
                    # input function, which it calls right after yielding this event.
                    try:
                        prompt = await asyncio.wait_for(
                            asyncio.shield(run.future(run.prompts, item.request_id)), 2.0)
                    except asyncio.TimeoutError:
                        prompt = DEFAULT_PROMPT
                    emit(run.id, "input_request", as_json(item.request_id), as_json(prompt), as_json(item.dump()))
                elif isinstance(item, ModelClientStreamingChunkEvent):
                    emit(run.id, "chunk", as_json(item.dump()))
                else:
                    emit(run.id, "event", as_json(await self.dumped(run, item)))
            if result is None:
                self.finish(run, "error", as_json("the team ended without a TaskResult"))
            else:
                dump = (lambda: result.model_dump(mode="json"))
                payload = await self.off_loop(dump) if run.images else dump()
                self.finish(run, "result", as_json(payload), repr(time.monotonic() - started))
        except asyncio.CancelledError:
            self.finish(run, "cancelled", as_json("Cancelled by user"))
        except Exception as error:  # a bad team, a failing tool: the run ends, the worker goes on
            if not run.finished:
                traceback.print_exc(file=sys.stderr)
            self.finish(run, "error", as_json(client_text(f"{type(error).__name__}: {error}")))
        finally:
            self.image_pixels -= run.images
            if run.images:
                run.images = 0
                # The run's decoded images are garbage now (AutoGen's objects for the run are dropped with its task).
                self.schedule_trim()

    def stop(self, run, reason):
        """Ends the run now: its terminal line leaves at once, whatever AutoGen does next.

        The CancellationToken reaches model calls and tools that honour it, but a team's run_stream then waits
        for its runtime to go idle, which a tool that ignores the token can delay without bound. So the run is
        reported cancelled immediately, its task is cancelled (again, until it ends: each cancel interrupts one
        await of run_stream's cleanup), and whatever is still running finishes in the background unreported.
        """
        run.token.cancel()
        self.finish(run, "cancelled", as_json(reason))
        for future in list(run.inputs.values()) + list(run.prompts.values()):
            if not future.done():
                future.cancel()

        def cancel_until_done(attempts=20):
            if run.task is not None and not run.task.done() and attempts > 0:
                run.task.cancel()
                asyncio.get_running_loop().call_later(0.5, cancel_until_done, attempts - 1)

        cancel_until_done()

    def finish(self, run, *fields):
        """Writes the run's one terminal line (result, cancelled or error); later ones are dropped."""
        if run.finished:
            return
        run.finished = True
        self.runs.pop(run.id, None)
        emit(run.id, *fields)

    def handle(self, line):
        try:
            command = json.loads(line)
            op = command.get("op")
        except (ValueError, AttributeError, RecursionError):
            print(f"worker: ignoring a line that is not a JSON object: {line[:200]!r}", file=sys.stderr)
            return
        try:
            self.dispatch(op, command)
        except Exception:  # a command the plugin should not have sent: say so, and serve the next one
            print(f"worker: cannot handle a {op!r} command:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            run_id = command.get("run")
            if op == "start" and isinstance(run_id, str) and run_id not in self.runs:
                emit(run_id, "error", as_json("the AutoGen worker could not start this run"))

    def dispatch(self, op, command):
        if op == "ping":
            emit("pong", as_json(command.get("n")))
        elif op == "team":
            # Validated and loaded once, so a broken team is reported when the plugin loads, not at its first run.
            # Later runs load from the validated ComponentModel, which skips pydantic's validation of the whole
            # JSON (measured: 0.12 ms instead of 1.0 ms per run for the round-robin team); each run still gets its
            # own objects.
            key = command.get("key")
            try:
                model = ComponentModel.model_validate(command["config"])
                ComponentLoader.load_component(model)
                self.teams[key] = model
                emit("team", as_json(key), "ok")
            except Exception as error:
                emit("team", as_json(key), "error", as_json(f"{type(error).__name__}: {error}"))
        elif op == "start":
            run_id = command["run"]
            config = command.get("config") or self.teams.get(command.get("key"))
            if config is None:
                emit(run_id, "error", as_json(f"unknown team {command.get('key')!r}"))
                return
            run = Run(run_id)
            self.runs[run_id] = run
            # The task is parsed inside the run: a task AutoGen refuses ends this run only.
            run.task = asyncio.get_running_loop().create_task(self.run(run, command.get("task"), config))
        elif op == "stop":
            run = self.runs.get(command.get("run"))
            if run is not None:
                self.stop(run, command.get("reason") or "Cancelled by user")
        elif op == "input":
            run = self.runs.get(command.get("run"))
            if run is not None:
                future = run.future(run.inputs, command.get("request_id"))
                if not future.done():
                    future.set_result(command.get("response", ""))
        else:
            print(f"worker: unknown op {op!r}", file=sys.stderr)


async def main(limits):
    worker = Worker(limits)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_COMMAND_BYTES)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    emit("ready", as_json({"pid": os.getpid()}))
    while True:
        try:
            line = await reader.readline()
        except ValueError:  # longer than the limit: the reader has dropped it (the plugin refuses such tasks)
            print(f"worker: dropped a command longer than {MAX_COMMAND_BYTES} bytes", file=sys.stderr)
            continue
        if not line:
            break  # the plugin went away: so do we
        worker.handle(line)


def limits_from_arguments():
    parser = argparse.ArgumentParser(description="An AutoGen worker of the autogen-team plugin.")
    parser.add_argument("--max-image-bytes", type=int, default=5 << 20)
    parser.add_argument("--max-image-pixels", type=int, default=16 << 20)
    parser.add_argument("--max-task-image-pixels", type=int, default=32 << 20)
    parser.add_argument("--max-worker-image-pixels", type=int, default=64 << 20)
    arguments = parser.parse_args()
    # Pillow's own bomb check as a second line (it refuses images over twice this): a format quirk the header
    # reader missed still cannot decode to more than that.
    PILImage.MAX_IMAGE_PIXELS = arguments.max_image_pixels
    return ImageLimits(arguments.max_image_bytes, arguments.max_image_pixels, arguments.max_task_image_pixels,
                       arguments.max_worker_image_pixels)


if __name__ == "__main__":
    asyncio.run(main(limits_from_arguments()))
