import Foundation
import Testing

/// A client's input never takes down an AutoGen worker or anyone else's run: tasks AutoGen refuses and image bombs
/// end their own run with an error while runs of other clients on the same workers complete; worker stderr (which
/// quotes client text) cannot forge host log lines; workers that keep crashing are restarted with a backoff.
@Suite("autogen-team hostile input", .serialized)
struct AutoGenHostileInputTests {
    /// Bystanders wait at their input request (so they are live on both workers) while other clients send tasks
    /// AutoGen refuses (before the fix, the first one killed its worker and every run on it) and a 164 KB PNG that
    /// declares 13000 x 13000 pixels (before the fix: 680 MB and ~19 s of decoding on the worker's event loop).
    @Test func badTasksAndImageBombsEndOnlyTheirOwnRun() async throws {
        // The bomb's task is ~220 KB of JSON: over the default task size, which would refuse it before any worker
        // sees it. Raised here, so the worker's own defences are what is tested.
        let server = try await AgentServer.start(workers: 2, autogen: ["max_task_bytes": 1 << 20])
        let images = try await blocking { try TestImages.make() }
        let undecodable = ((Data(base64Encoded: images.small) ?? Data()).prefix(33) + Data(repeating: 7, count: 100))
            .base64EncodedString()
        try await withTimeout(seconds: 90) {
            var bystanders: [(client: AgentClient, request: AgentFrame)] = []
            for _ in 0..<4 {
                let client = try await AgentClient.connect(port: server.port, path: "/agents/user_proxy")
                try await client.send(["type": "start", "task": "Draft a plan for streaming."])
                bystanders.append((client, try await client.next(ofType: "input_request")))
            }

            let refused: [(task: Any, reason: String)] = [
                (["type": "Bogus"], "Unknown message type"),
                (["type": "TextMessage"], "Field required"),
                ([["type": "Bogus"]], "Unknown message type"),
                (TestImages.task(images.bomb), "13000x13000 pixels"),
                (TestImages.task(Data("BM not an image".utf8).base64EncodedString()), "PNG, JPEG, GIF or WebP"),
                // A PNG's valid header, then bytes Pillow cannot parse: the client saw Pillow's message, with a
                // worker heap address in it ("<_io.BytesIO object at 0x7f68ac5294e0>").
                (TestImages.task(undecodable), "image 1 is not a decodable PNG, JPEG, GIF or WebP image"),
            ]
            for (task, reason) in refused {
                let client = try await AgentClient.connect(port: server.port, path: "/agents/round_robin")
                try await client.send(["type": "start", "task": task])
                let end = try #require(try await client.collect().last)
                #expect(end.type == "completion" && end.status == "error", "\(reason): \(end)")
                let error = end.object["error"] as? String ?? ""
                #expect(error.contains("invalid task") && error.contains(reason), "\(error)")
                #expect(!error.contains(" at 0x"), "a worker address reached the client: \(error)")
                await client.close()
            }

            // A small image is within the limits and goes through AutoGen (decoded off the event loop).
            let client = try await AgentClient.connect(port: server.port, path: "/agents/round_robin")
            try await client.send(["type": "start", "task": TestImages.task(images.small)])
            let frames = try await client.collect()
            #expect(frames.first?.shape == "message:MultiModalMessage")
            #expect(frames.last?.type == "result", "\(frames.last.map { "\($0)" } ?? "no frames")")
            await client.close()

            for (bystander, request) in bystanders {
                try await bystander.send(["type": "input_response", "response": "Looks good. APPROVE",
                                          "request_id": request.object["request_id"] ?? "", "run_id": request.runID ?? ""])
                let end = try #require(try await bystander.collect().last)
                #expect(end.type == "result" && end.status == "complete", "bystander \(request.runID ?? ""): \(end)")
                await bystander.close()
            }
        }
        #expect(!server.logText.contains("exited"), "a worker died:\n\(server.logText)")
    }

    /// AutoGen keeps a task's images decoded for the whole run, so many small image tasks at once added up without
    /// bound: the images the live runs of a worker hold are bounded too (here 100 pixels: one 8 x 8 image), and a
    /// task over the worker's budget ends with an error until runs end.
    @Test func imagesHeldByLiveRunsAreBoundedPerWorker() async throws {
        let server = try await AgentServer.start(
            workers: 1, autogen: ["max_task_image_pixels": 100, "max_worker_image_pixels": 100])
        let images = try await blocking { try TestImages.make() }
        try await withTimeout(seconds: 60) {
            // Holds its image while it waits for input.
            let holder = try await AgentClient.connect(port: server.port, path: "/agents/user_proxy")
            try await holder.send(["type": "start", "task": TestImages.task(images.small)])
            let request = try await holder.next(ofType: "input_request")

            let refused = try await AgentClient.connect(port: server.port, path: "/agents/round_robin")
            try await refused.send(["type": "start", "task": TestImages.task(images.small)])
            let end = try #require(try await refused.collect().last)
            #expect(end.type == "completion" && end.status == "error")
            #expect((end.object["error"] as? String ?? "").contains("already hold 64 pixels"), "\(end)")
            await refused.close()

            try await holder.send(["type": "input_response", "response": "Looks good. APPROVE",
                                   "request_id": request.object["request_id"] ?? "", "run_id": request.runID ?? ""])
            #expect(try await holder.collect().last?.type == "result")
            await holder.close()

            // The holder's images were let go of with its run.
            let next = try await AgentClient.connect(port: server.port, path: "/agents/round_robin")
            try await next.send(["type": "start", "task": TestImages.task(images.small)])
            let frames = try await next.collect()
            #expect(frames.last?.type == "result", "\(frames.last.map { "\($0)" } ?? "no frames")")
            await next.close()
        }
    }

    /// A thread cannot be cancelled: stopping a run while its image decoded let go of the one-decode-at-a-time rule
    /// and of its pixel charge at once while the decode ran on, so a loop of start (a 16 Mpx image) and stop ran
    /// many decodes at once (~130 MB each here: the image bombs of F3 again). Driven against one worker directly,
    /// so each stop lands while its run's decode runs: a `ping` sent after the `start` is answered only after the
    /// run's first step (which hands the decode to a thread) has run. The worker's peak RSS over the loop stays
    /// under one more decode than a single image run's, and a bystander run completes. Once the runs have ended,
    /// the worker is back near its size before them.
    @Test func stoppingImageRunsDoesNotStackDecodes() async throws {
        let python = try AgentServer.python()
        let teams = try await blocking { try AgentServer.teams() }
        let script = #"""
            import base64, io, json, signal, subprocess, sys, time
            from PIL import Image
            signal.alarm(120)  # a worker that stops answering ends the test (and, at stdin's EOF, the worker)
            worker, teams = sys.argv[1], sys.argv[2]
            png = io.BytesIO()
            Image.new("RGB", (4096, 4096), (0, 128, 255)).save(png, "PNG")  # the default limit: 16 Mpx
            task = {"type": "MultiModalMessage", "source": "user",
                    "content": ["What is in this picture?", {"data": base64.b64encode(png.getvalue()).decode()}]}
            process = subprocess.Popen([sys.executable, worker], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       text=True)
            def send(command):
                process.stdin.write(json.dumps(command) + "\n")
                process.stdin.flush()
            def read():
                fields = process.stdout.readline().rstrip("\n").split("\t")
                if fields == [""]:
                    raise SystemExit("the worker exited")
                return fields
            def until(*head):  # the first line that starts with these fields
                while tuple((fields := read())[:len(head)]) != head:
                    pass
                return fields
            def end_of(run):  # the kind of its terminal line
                while (fields := read())[0] != run or fields[1] not in ("result", "error", "cancelled"):
                    pass
                return fields[1]
            def status_kb(field):
                with open(f"/proc/{process.pid}/status") as status:
                    return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
            peak_kb = lambda: status_kb("VmHWM")
            until("ready")
            for name in ("round_robin", "user_proxy"):
                send({"op": "team", "key": name, "config": json.load(open(f"{teams}/{name}.json"))})
                until("team")
            send({"op": "start", "run": "bystander", "key": "user_proxy", "task": "Draft a plan."})
            request = until("bystander", "input_request")
            baseline = peak_kb()
            resident = status_kb("VmRSS")
            send({"op": "start", "run": "single", "key": "round_robin", "task": task})
            ends = {"single": end_of("single")}
            single = peak_kb()
            for n in range(12):
                send({"op": "start", "run": f"stopped-{n}", "key": "round_robin", "task": task})
                send({"op": "ping", "n": n})
                until("pong", str(n))
                send({"op": "stop", "run": f"stopped-{n}", "reason": "test"})
                ends[f"stopped-{n}"] = end_of(f"stopped-{n}")
            send({"op": "start", "run": "after", "key": "round_robin", "task": task})
            ends["after"] = end_of("after")  # after the stopped runs' image work, on the same thread
            loop = peak_kb()
            send({"op": "input", "run": "bystander", "request_id": json.loads(request[2]), "response": "APPROVE"})
            ends["bystander"] = end_of("bystander")
            # The memory is given back a second after the last run ended (coalesced, on the image thread): wait
            # for it, up to 30 s.
            deadline = time.monotonic() + 30
            while status_kb("VmRSS") - resident >= (single - baseline) / 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            kept = status_kb("VmRSS") - resident
            process.stdin.close()
            process.wait()
            print(json.dumps({"decode_kb": single - baseline, "loop_extra_kb": loop - single, "kept_kb": kept,
                              "ends": ends}))
            """#
        let output = try await blocking { () -> Data in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: python)
            let worker = "\(AgentServer.root)/Plugins/autogen-team/python/agenthost_autogen_worker.py"
            process.arguments = ["-c", script, worker, teams]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return data
        }
        let report = try #require(try JSONSerialization.jsonObject(with: output) as? [String: Any],
                                  "\(String(decoding: output, as: UTF8.self))")
        let decode = report["decode_kb"] as? Int ?? 0
        let extra = report["loop_extra_kb"] as? Int ?? .max
        let ends = report["ends"] as? [String: String] ?? [:]
        #expect(decode > 50_000, "a 16 Mpx image run should cost ~130 MB: \(report)")
        #expect(extra < decode, "stopped runs decoded at once: \(report)")
        // The runs' images are let go of when they end, and the worker gives the memory back to the system (glibc
        // kept it in the image thread's arena: a worker stayed hundreds of MB large after its image runs).
        #expect(report["kept_kb"] as? Int ?? .max < decode / 2, "\(report)")
        #expect(ends["single"] == "result" && ends["after"] == "result" && ends["bystander"] == "result", "\(ends)")
        #expect(ends.filter { $0.key.hasPrefix("stopped-") }.values.allSatisfy { $0 == "cancelled" }, "\(ends)")
    }

    /// The header reader read the first IHDR of a PNG (1 x 1) while Pillow decodes with the last one before the pixels
    /// (5792 x 5792, 33.5 Mpx: under twice Pillow's MAX_IMAGE_PIXELS, so only a warning): each such 4 KB image cost
    /// ~100 MB (AutoGen's RGB copy) for the whole run, uncounted by the worker's pixel budget. Now Pillow's reading
    /// of the headers is the authority: the task is refused, for its run only, and the worker never grows (its peak
    /// RSS stays that of a worker that ran a text team); a bystander completes.
    @Test func imagesWhoseHeadersDisagreeAreRefused() async throws {
        let server = try await AgentServer.start(workers: 1)
        let image = try await blocking { try TestImages.doubleHeaderPNG() }
        try await withTimeout(seconds: 60) {
            let attacker = try await AgentClient.connect(port: server.port, path: "/agents/round_robin")
            try await attacker.send(["type": "start", "task": TestImages.task(Array(repeating: image, count: 3))])
            let end = try #require(try await attacker.collect().last)
            #expect(end.type == "completion" && end.status == "error", "\(end)")
            let error = end.object["error"] as? String ?? ""
            #expect(error.contains("invalid task") && error.contains("more than one IHDR"), "\(error)")
            await attacker.close()

            let bystander = try await AgentClient.connect(port: server.port, path: "/agents/round_robin")
            try await bystander.send(["type": "start", "task": "Write a poem about WebSockets."])
            #expect(try await bystander.collect().last?.type == "result")
            await bystander.close()
        }
        let peaks = try await blocking { try WorkerMemory.peakKilobytes(ofChildrenOf: server.process.processIdentifier) }
        #expect(peaks.count == 1 && peaks.allSatisfy { $0 < 200_000 }, "worker peak RSS (KB): \(peaks)")
    }

    /// The watchdog took only a pong as a sign of life, and a pong waits in the pipe behind every line written
    /// before it: a worker streaming megabytes to a reader that was behind (a burst of image runs on a busy
    /// machine) was killed as hung while it was writing all along. A stand-in worker trickles one 2 MB event over
    /// ~3 s, answering no ping meanwhile (as a worker blocked writing to a full pipe), under a 1 s hang timeout:
    /// the bytes it writes count as life, so it is not killed and the run completes.
    @Test func aWorkerThatKeepsWritingIsNotKilledAsHung() async throws {
        let worker = try StandInWorker.write(named: "trickling_worker.py", onStart: #"""
            sys.stdout.write(run + "\tevent\t" + '{"type":"TextMessage","source":"writer","content":"')
            for _ in range(60):  # 2 MB in 60 pieces, 50 ms apart: 3 s without a pong
                sys.stdout.write("a" * ((2 << 20) // 60))
                sys.stdout.flush()
                time.sleep(0.05)
            sys.stdout.write('"}\n')
            emit(run, "result", json.dumps({"messages": [], "stop_reason": "done"}), "3.0")
            """#)
        // A 2 MB event is over the host's run log entry limit by default (1 MiB): raised here.
        let server = try await AgentServer.start(workers: 1, autogen: ["worker": worker, "hang_timeout_ms": 1000],
                                                 serverConfig: ["run_log": ["max_entry_bytes": 8 << 20]])
        let frames = try await StandInWorker.framesOfOneRun(on: server, seconds: 60)
        #expect(frames.first?.type == "message" && frames.last?.type == "result", "\(frames.last.map { "\($0)" } ?? "no frames")")
        #expect(!server.logText.contains("did not answer a ping"), "\(server.logText)")
    }

    /// At EOF the plugin's reader handed over what followed the last newline as one more line: a worker killed
    /// mid-line (by the watchdog, by the kernel's OOM killer) sent its run's client half a JSON value as an event.
    /// Now only whole lines count; the run ends with the worker's loss.
    @Test func aWorkersHalfLineNeverReachesAClient() async throws {
        let worker = try StandInWorker.write(named: "dying_worker.py", onStart: #"""
            sys.stdout.write(run + '\tevent\t{"type":"TextMessage","source":"writer","content":"cut off')
            sys.stdout.flush()
            sys.exit(1)
            """#)
        let server = try await AgentServer.start(workers: 1, autogen: ["worker": worker])
        let frames = try await StandInWorker.framesOfOneRun(on: server, seconds: 30)
        #expect(frames.count == 1, "\(frames)")
        let end = try #require(frames.last)
        #expect(end.type == "completion" && end.status == "error", "\(end)")
        #expect((end.object["error"] as? String ?? "").contains("exited while running this task"), "\(end)")
    }

    /// The events a worker wrote for a run waited in an unbounded queue while the SDK held the route back for a
    /// client that does not read. Runs write to the host's run log now, which never waits for a socket: a client
    /// that reads nothing holds nothing back (the host paces its watch), so the queue does not fill for it and the
    /// run completes; another socket that resumes the run gets every frame. (The queue's bound still applies while
    /// a run is held at an input request: see the tests below.) A stand-in worker writes 300 events of 128 KB.
    @Test func aClientThatDoesNotReadHoldsNothingBack() async throws {
        let worker = try StandInWorker.write(named: "flooding_worker.py", onStart: #"""
            message = json.dumps({"type": "TextMessage", "source": "writer", "content": "a" * (128 << 10)})
            for _ in range(300):
                emit(run, "event", message)
            emit(run, "result", json.dumps({"messages": [], "stop_reason": "done"}), "1.0")
            """#)
        let server = try await AgentServer.start(
            workers: 1, autogen: ["worker": worker], serverConfig: ["run_log": ["max_bytes_per_log": 64 << 20]])
        try await withTimeout(seconds: 60) {
            let idle = try await AgentClient.connect(port: server.port, path: "/agents/round_robin")
            try await idle.send(["type": "start", "run_id": "flood-1", "task": "go"])
            // The first frame carries the resume token; after it this socket reads nothing.
            let first = try await idle.next()
            let reader = try await AgentClient.connect(port: server.port, path: "/agents/round_robin")
            try await reader.send(["type": "resume", "run_id": "flood-1", "last_seq": 1,
                                   "resume_token": first.object["resume_token"] ?? ""])
            let frames = [first] + (try await reader.collect(runID: "flood-1"))
            #expect(frames.last?.type == "result", "\(frames.last.map { String($0.text.prefix(300)) } ?? "")")
            #expect(frames.filter { $0.type == "message" }.count == 300)
            #expect(frames.compactMap(\.seq) == Array(1...frames.count))
            #expect(!server.logText.contains("not reading this run's events"))
            await reader.close()
            await idle.close()
        }
    }

    /// A tool's subprocess, or a C extension's printf, writes to file descriptor 1, which was still the protocol
    /// pipe (only Python's sys.stdout went to stderr): a tool forged `result` lines for runs r1 to r9, and its own
    /// run (r1) ended with the forged result. Descriptor 1 is stderr in the worker now: the forged lines reach the
    /// host log as the worker's stderr, and the run ends with its real result.
    @Test func aToolWritingToDescriptorOneCannotForgeProtocolLines() async throws {
        let teams = try await blocking { try AgentServer.teams() }
        let server = try await AgentServer.start(
            workers: 1, autogen: ["routes": ["/agents/forge": ["team_file": "\(teams)/forge.json"]]])
        let frames = try await StandInWorker.framesOfOneRun(on: server, path: "/agents/forge", seconds: 60)
        let end = try #require(frames.last)
        #expect(end.type == "result", "\(end)")
        let text = frames.map { "\($0.object)" }.joined(separator: "\n")
        #expect(!text.contains("FORGED"), "\(text)")
        #expect(text.contains("wrote to fd 1"), "the tool did not run: \(text)")
        #expect(await eventually(seconds: 10) {
            server.logText.contains("FORGED-ON-FD-1") && server.logText.contains("FORGED-ON-SUBPROCESS")
        }, "\(server.logText)")
    }

    /// The worker's stdout reader took lines of any length: a worker (or a helper of it) writing without a newline
    /// grew the host's buffer without bound. Lines are capped now (max_worker_line_bytes, by default well above the
    /// largest result line the image limits allow): past the cap the worker is killed as broken, with a log line
    /// saying why, and its runs end with an error.
    @Test func aWorkerLineOverTheCapKillsTheWorker() async throws {
        let worker = try StandInWorker.write(named: "endless_line_worker.py", onStart: #"""
            sys.stdout.write(run + "\tevent\t" + "a" * (2 << 20))
            sys.stdout.flush()
            time.sleep(120)
            """#)
        let server = try await AgentServer.start(workers: 1, autogen: ["worker": worker,
                                                                       "max_worker_line_bytes": 1 << 20])
        let frames = try await StandInWorker.framesOfOneRun(on: server, seconds: 60)
        #expect(frames.count == 1, "\(frames)")
        let end = try #require(frames.last)
        #expect(end.type == "completion" && end.status == "error", "\(end)")
        #expect((end.object["error"] as? String ?? "").contains("wrote a line longer than 1048576 bytes"), "\(end)")
        #expect(server.logText.contains("wrote a line longer than 1048576 bytes (max_worker_line_bytes): killing it"),
                "\(server.logText)")
    }

    /// A run overflowed when an event arrived while any other waited and the two were over the budget: a large
    /// event (a result line with images is tens of MiB) behind one small queued event ended a reading client's
    /// run with "the client is not reading", and a terminal event was replaced too (the result lost). Now only a
    /// budget already used up overflows, and a terminal event is always queued as it is. The route is held at an
    /// input request while a stand-in worker writes a small event, a 2 MiB event and a 2 MiB result (budget 1 MiB);
    /// once the host has read them all, the client answers and gets every one.
    @Test func aLargeEventOrResultBehindAQueuedOneIsDelivered() async throws {
        let worker = try StandInWorker.write(named: "large_events_worker.py", onStart: Self.heldAtInput + #"""
            big = "b" * (2 << 20)
            lines = [pline(run, "event", json.dumps({"type": "TextMessage", "source": "writer", "content": "small"})),
                     pline(run, "event", json.dumps({"type": "TextMessage", "source": "writer", "content": big})),
                     pline(run, "result", json.dumps({"messages": [{"type": "TextMessage", "source": "writer",
                                                                   "content": big}], "stop_reason": "done"}), "1.0")]
            write_all_read(run, lines)
            """#)
        // The 2 MiB frames are over the host's run log entry limit by default (1 MiB): raised here.
        let server = try await AgentServer.start(
            workers: 1, autogen: ["worker": worker, "max_queued_event_bytes": 1 << 20],
            serverConfig: ["run_log": ["max_entry_bytes": 8 << 20]])
        let frames = try await withTimeout(seconds: 60) {
            let client = try await AgentClient.connect(port: server.port, path: "/agents/round_robin")
            defer { Task { await client.close() } }
            try await client.send(["type": "start", "task": "go"])
            let request = try await client.next(ofType: "input_request")
            #expect(await eventually(seconds: 30) { server.logText.contains("ALL-READ r1") }, "\(server.logText)")
            try await client.send(["type": "input_response", "response": "ok",
                                   "request_id": request.object["request_id"] ?? "", "run_id": request.runID ?? ""])
            return try await client.collect()
        }
        let end = try #require(frames.last)
        #expect(end.type == "result", "\(end)")
        #expect(frames.filter { $0.type == "message" }.count == 2, "\(frames.map(\.type))")
    }

    /// Each run's queue was bounded, but not their sum: one address with 128 runs and a client that reads nothing
    /// held 128 budgets (4 GiB by default). The pool's runs now share a total (max_queued_event_bytes_total): over
    /// it, the run with the most queued ends with an error and the others go on. Two runs are held at an input
    /// request while a stand-in worker queues 6 and 3 events of ~120 KB for them (a 1 MiB total, crossed by the
    /// ninth): the larger ends with the error, the smaller gets all its events and its result.
    @Test func theRunsOfAPoolShareATotalOfQueuedEvents() async throws {
        let worker = try StandInWorker.write(named: "queued_total_worker.py", onStart: Self.heldAtInput + #"""
            message = json.dumps({"type": "TextMessage", "source": "writer", "content": "q" * 120_000})
            lines = [pline(run, "event", message) for _ in range(int(command["task"]))]
            lines.append(pline(run, "result", json.dumps({"messages": [], "stop_reason": "done"}), "1.0"))
            write_all_read(run, lines)
            """#)
        let server = try await AgentServer.start(
            workers: 1, autogen: ["worker": worker, "max_queued_event_bytes_total": 1 << 20])
        try await withTimeout(seconds: 60) {
            let large = try await AgentClient.connect(port: server.port, path: "/agents/round_robin")
            let small = try await AgentClient.connect(port: server.port, path: "/agents/round_robin")
            try await large.send(["type": "start", "task": "6"])
            let largeRequest = try await large.next(ofType: "input_request")
            try await small.send(["type": "start", "task": "3"])
            let smallRequest = try await small.next(ofType: "input_request")
            #expect(await eventually(seconds: 30) {
                server.logText.contains("ALL-READ r1") && server.logText.contains("ALL-READ r2")
            }, "\(server.logText)")
            for (client, request) in [(small, smallRequest), (large, largeRequest)] {
                try await client.send(["type": "input_response", "response": "ok",
                                       "request_id": request.object["request_id"] ?? "", "run_id": request.runID ?? ""])
            }
            let smallFrames = try await small.collect()
            #expect(smallFrames.last?.type == "result", "\(smallFrames.last.map { "\($0)" } ?? "none")")
            #expect(smallFrames.filter { $0.type == "message" }.count == 3)
            let end = try #require(try await large.collect().last)
            #expect(end.type == "completion" && end.status == "error", "\(end)")
            #expect((end.object["error"] as? String ?? "").contains("over their total (1048576 bytes)"), "\(end)")
            await small.close()
            await large.close()
        }
    }

    /// For stand-in workers whose run waits at an input request (the route holds there, taking no events, as for
    /// a client that does not read): `pline` makes a protocol line; `write_all_read` writes the run's lines after its
    /// input request, then padding the pipe cannot hold, so when the write returns the host has read the run's
    /// lines, and says so on stderr (`ALL-READ <run>` in the host log).
    static let heldAtInput = #"""
        def pline(*fields):
            return "\t".join(fields) + "\n"
        def write_all_read(run, lines):
            request = json.dumps({"type": "UserInputRequestedEvent", "source": "user", "request_id": "q1",
                                  "content": ""})
            sys.stdout.write(pline(run, "input_request", json.dumps("q1"), json.dumps("Your answer: "), request))
            sys.stdout.write("".join(lines) + "pong\t0\n" * 40000)
            sys.stdout.flush()
            sys.stderr.write("ALL-READ " + run + "\n")
            sys.stderr.flush()

        """#

    /// The header reader against what Pillow writes, in every accepted format, and its refusals
    /// (image_limits.py's self-check).
    @Test func imageHeadersAreReadAsPillowWritesThem() async throws {
        let python = try AgentServer.python()
        let status = try await blocking { () -> Int32 in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = ["\(AgentServer.root)/Plugins/autogen-team/python/image_limits.py", "--self-check"]
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }
        #expect(status == 0)
    }

    /// A newline in client text that reaches the worker's stderr (the refused task is quoted there) forged a whole
    /// `critical` line in the host log, and an ESC reached the operator's terminal. Each stderr line is now one
    /// log line of the plugin's, escaped by the host (as every plugin's log text is). The escaping is the log's
    /// alone: the client gets the error as the worker wrote it (it saw a literal `\n` while the plugin escaped it).
    @Test func workerStderrCannotForgeAHostLogLine() async throws {
        let server = try await AgentServer.start(workers: 1)
        let forged = "2026-12-01T01:00:00+0000 critical agenthost : FORGED-BY-CLIENT"
        let end = try await withTimeout(seconds: 30) {
            let client = try await AgentClient.connect(port: server.port, path: "/agents/round_robin")
            try await client.send(["type": "start", "task": ["type": "Bogus\n\(forged)\u{1B}[2J"]])
            defer { Task { await client.close() } }
            return try #require(try await client.collect().last)
        }
        let error = end.object["error"] as? String ?? ""
        #expect(error.contains("Bogus\n\(forged)\u{1B}[2J"), "\(end)")
        // Two log lines quote it, from two threads in no set order: the worker's stderr line and the SDK's line
        // for the failed run.
        #expect(await eventually(seconds: 10) {
            server.logText.split(separator: "\n").filter { $0.contains("FORGED-BY-CLIENT") }.count >= 2
        }, "the refused task was not logged twice:\n\(server.logText)")
        let lines = server.logText.split(separator: "\n")
        #expect(!lines.contains { $0.hasPrefix(forged) }, "\(server.logText)")
        // Both escaped.
        let logged = lines.filter { $0.contains("FORGED-BY-CLIENT") }
        #expect(logged.contains { $0.contains("AutoGen worker pid") && $0.contains("\\u{1B}[2J") }, "\(logged)")
        #expect(logged.contains { $0.contains("failed: invalid task") && $0.contains("Bogus\\u{A}2026") },
                "\(logged)")
        #expect(!server.logText.contains("\u{1B}"))
    }

    /// The first crash of a worker that was serving is replaced at once; a second soon after waits (0.1 s, doubling):
    /// a team or input that crashes workers in a loop no longer keeps the pool restarting flat out.
    @Test func crashesInARowAreRestartedWithABackoff() async throws {
        let server = try await AgentServer.start(workers: 2)
        try await withTimeout(seconds: 60) {
            for _ in 0..<2 {
                let client = try await AgentClient.connect(port: server.port, path: "/agents/crash")
                try await client.send(["type": "start", "task": "go"])
                let end = try #require(try await client.collect().last)
                #expect(end.type == "completion" && end.status == "error")
                await client.close()
            }
        }
        #expect(await eventually(seconds: 10) { server.logText.contains("next start in 0.1 s") }, "\(server.logText)")
        #expect(server.logText.contains("starting a replacement"))
        // The pool recovers: a run after the backoff works.
        let frames = try await withTimeout(seconds: 30) {
            let client = try await AgentClient.connect(port: server.port, path: "/agents/round_robin")
            defer { Task { await client.close() } }
            try await client.send(["type": "start", "task": "Write a poem about WebSockets."])
            return try await client.collect()
        }
        try AutoGenCaptures.expectMatches(frames, capture: "team_round_robin")
    }
}

extension AgentClient {
    /// Reads frames up to the first of `type`; a run that ends first fails the test.
    func next(ofType type: String) async throws -> AgentFrame {
        while true {
            let frame = try await self.next()
            if frame.type == type { return frame }
            if frame.isTerminal || frame.type == "error" { throw Refused(frame: frame) }
        }
    }
}

/// Images for tasks, made by the AutoGen venv's Python: a real PNG bomb (zlib-compressed zeros), a small PNG, and
/// the attacker's PNG with two IHDR chunks.
enum TestImages {
    static func make() throws -> (bomb: String, small: String) {
        let script = #"""
            import base64, io, json, struct, zlib
            from PIL import Image
            def chunk(kind, data):
                return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
            width = height = 13000
            packer = zlib.compressobj(9)
            row = bytes(width + 1)
            pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
            bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                    + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
            small = io.BytesIO()
            Image.new("RGB", (8, 8), (0, 128, 255)).save(small, "PNG")
            print(json.dumps({"bomb": base64.b64encode(bomb).decode(), "small": base64.b64encode(small.getvalue()).decode()}))
            """#
        let object = try JSONSerialization.jsonObject(with: Data(try self.python(script).utf8)) as? [String: String]
        guard let bomb = object?["bomb"], let small = object?["small"] else {
            throw AgentServer.PythonMissing(python: "the image maker")
        }
        return (bomb, small)
    }

    /// A MultiModalMessage task, as AutoGen dumps one: text, then the image.
    static func task(_ base64: String) -> [String: Any] {
        self.task([base64])
    }

    /// A MultiModalMessage task with several images.
    static func task(_ images: [String]) -> [String: Any] {
        ["type": "MultiModalMessage", "source": "user",
         "content": ["What is in this picture?"] + images.map { ["data": $0] as [String: Any] }]
    }

    /// The attacker's PNG (4 KB): a 1 x 1 IHDR, then a 5792 x 5792 one (1 bit a pixel), then zeros; as base64.
    static func doubleHeaderPNG() throws -> String {
        try self.python(#"""
            import base64, struct, sys, zlib
            def chunk(kind, data):
                return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
            ihdr = lambda side: chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
            side = 5792
            packer = zlib.compressobj(9)
            row = bytes(1 + (side + 7) // 8)
            pixels = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
            png = b"\x89PNG\r\n\x1a\n" + ihdr(1) + ihdr(side) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
            sys.stdout.write(base64.b64encode(png).decode())
            """#)
    }

    /// A JPEG of random grey noise at quality 1 (~85 KB for 800 x 800): small, but its PNG re-encoding in AutoGen's
    /// events is megabytes. As base64.
    static func noiseJPEG(side: Int) throws -> String {
        try self.python(#"""
            import base64, io, os, sys
            from PIL import Image
            side = int(sys.argv[1])
            image = Image.frombytes("L", (side, side), os.urandom(side * side)).convert("RGB")
            jpeg = io.BytesIO()
            image.save(jpeg, "JPEG", quality=1)
            sys.stdout.write(base64.b64encode(jpeg.getvalue()).decode())
            """#, arguments: ["\(side)"])
    }

    /// What `script` writes to stdout, run by the AutoGen venv's Python.
    static func python(_ script: String, arguments: [String] = []) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try AgentServer.python())
        process.arguments = ["-c", script] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw AgentServer.PythonMissing(python: "an image maker (status \(process.terminationStatus))")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// A stand-in for the AutoGen worker (plugin config `worker`): the worker protocol's ready, team and ping lines,
/// and `onStart` (Python, with `run`, `emit`, `json`, `sys` and `time` at hand) for each start command.
enum StandInWorker {
    static func write(named name: String, onStart: String) throws -> String {
        let path = try PluginFixtures.makeDirectory() + "/" + name
        let start = onStart.split(separator: "\n", omittingEmptySubsequences: false).map { "        " + $0 }
        try (#"""
            import json, sys, time
            def emit(*fields):
                sys.stdout.write("\t".join(fields) + "\n")
                sys.stdout.flush()
            emit("ready", json.dumps({"pid": 0}))
            for line in sys.stdin:
                command = json.loads(line)
                if command["op"] == "ping":
                    emit("pong", json.dumps(command["n"]))
                elif command["op"] == "team":
                    emit("team", json.dumps(command["key"]), "ok")
                elif command["op"] == "start":
                    run = command["run"]

            """# + start.joined(separator: "\n")).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

extension StandInWorker {
    /// The frames of one run (task "go") on `path`, up to its end.
    static func framesOfOneRun(on server: ServerProcess, path: String = "/agents/round_robin",
                               seconds: Double) async throws -> [AgentFrame]
    {
        try await withTimeout(seconds: seconds) {
            let client = try await AgentClient.connect(port: server.port, path: path)
            defer { Task { await client.close() } }
            try await client.send(["type": "start", "task": "go"])
            return try await client.collect()
        }
    }
}

/// The AutoGen workers' memory, from /proc: they are the server's children.
enum WorkerMemory {
    /// Each child's peak resident set (VmHWM), in KB.
    static func peakKilobytes(ofChildrenOf pid: Int32) throws -> [Int] {
        try self.children(of: pid).compactMap { self.status(of: $0, field: "VmHWM") }
    }

    /// Each child's resident set now (VmRSS), in KB.
    static func residentKilobytes(ofChildrenOf pid: Int32) throws -> [Int] {
        try self.children(of: pid).compactMap { self.status(of: $0, field: "VmRSS") }
    }

    static func children(of pid: Int32) throws -> [Int32] {
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")
        return tasks.flatMap { task -> [Int32] in
            let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? ""
            return text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
    }

    private static func status(of pid: Int32, field: String) -> Int? {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix("\(field):") }
        return line.flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") }
    }
}
