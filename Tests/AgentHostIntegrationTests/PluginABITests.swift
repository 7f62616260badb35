import AgentHostCore
import AgentHostPlugins
import Foundation
import Glibc
import Logging
import NIOCore
import Testing

/// The ABI's promises, checked from the plugin's side with the lifecycle_recorder fixture (compiled at test time):
/// it records every callback and answers commands that exercise the host function table.
@Suite("Plugin ABI")
struct PluginABITests {
    struct Recorder {
        let server: TestServer
        let read: () -> UnsafePointer<CChar>?

        var lines: [String] {
            guard let log = self.read() else { return [] }
            return String(cString: log).split(separator: "\n").map(String.init)
        }

        /// Lines that are callbacks of connections (not instance create/drop).
        var connectionLines: [String] { self.lines.filter { !$0.hasPrefix("create") && !$0.hasPrefix("drop") } }

        func connect(_ path: String = "/recorder") async throws -> RawWebSocketClient {
            try await RawWebSocketClient.connect(port: self.server.port, path: path)
        }
    }

    static func withRecorder(logs: LogRecorder? = nil, _ body: (Recorder) async throws -> Void) async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileFixture("lifecycle_recorder", into: directory)
        // These tests answer close frames by hand: on a loaded machine (every suite starting at once on two cores)
        // the 5 s default once ran out between the server's close frame and the test's reply.
        try await TestServer.with(pluginDirectory: directory, logs: logs,
                                  configure: { $0.webSocket.closeTimeout = .seconds(60) }) { server in
            let plugin = try #require(server.loaded.first { $0.name == "recorder" })
            let read = try plugin.stringFunction("recorder_log")
            try await body(Recorder(server: server, read: { read() }))
        }
    }

    @Test func deliversOpenMessageCloseInOrderWithExactlyOneClose() async throws {
        try await Self.withRecorder { recorder in
            #expect(recorder.lines.first == "create config={}")
            let client = try await recorder.connect("/recorder?run=1")
            try await client.sendText("hi")
            #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "hi")
            try await client.sendClose(code: 1000, reason: "bye")
            _ = try await withTimeout { try await client.readMessageOrClose() }
            #expect(await eventually { recorder.connectionLines.count == 3 })
            #expect(recorder.connectionLines == [
                "open route=/recorder target=/recorder?run=1 sub= scopes= protocol=",
                "message kind=1 len=2",
                "close code=1000 reason=bye",
            ])
        }
    }

    @Test func reportsErrorsBeforeTheCloseAndAbruptDisconnectsAs1006() async throws {
        try await Self.withRecorder { recorder in
            let violator = try await recorder.connect()
            try await violator.sendFrame(opcode: 0x1, payload: [0xFF])  // not UTF-8
            _ = try await withTimeout { try await violator.readMessageOrClose() }
            let dropper = try await recorder.connect()
            await dropper.close()
            #expect(await eventually { recorder.connectionLines.filter { $0.hasPrefix("close") }.count == 2 })
            let lines = recorder.connectionLines
            let closes = lines.filter { $0.hasPrefix("close") }
            #expect(closes.sorted() == ["close code=1006 reason=", "close code=1007 reason="])
            // on_error comes before on_close for each connection.
            let invalid = try #require(lines.firstIndex { $0.hasPrefix("error kind=2") })
            #expect(invalid < lines.firstIndex(of: "close code=1007 reason=")!)
            let lost = try #require(lines.firstIndex { $0.hasPrefix("error kind=5") })
            #expect(lost < lines.firstIndex(of: "close code=1006 reason=")!)
        }
    }

    @Test func pluginClosesWithItsOwnCodeAndCannotSendReservedCodes() async throws {
        try await Self.withRecorder { recorder in
            let client = try await recorder.connect()
            try await client.sendText("bad-close")
            #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "3,3,3,3")
            try await client.sendText("close-me")
            let close = try await withTimeout { try await client.readMessageOrClose() }
            #expect(close.closeCode == 4000)
            #expect(close.payload.dropFirst(2) == Array("bye".utf8)[...])
            try await client.sendClose(code: 4000)
            #expect(try await withTimeout { await client.waitForDisconnect() })
            #expect(await eventually { recorder.connectionLines.last == "close code=4000 reason=bye" })
        }
    }

    @Test func staleHandlesAreRefusedNotDereferenced() async throws {
        try await Self.withRecorder { recorder in
            let first = try await recorder.connect()
            try await first.sendClose(code: 1000)
            _ = try await withTimeout { try await first.readMessageOrClose() }
            #expect(await eventually { recorder.connectionLines.last?.hasPrefix("close") == true })
            let second = try await recorder.connect()
            try await second.sendText("stale")
            #expect(try await withTimeout { try await second.readMessageOrClose() }.text == "1")  // AGENTHOST_CLOSED
            await second.close()
        }
    }

    @Test func postFromAnotherThreadAndTimersArriveOnTheConnection() async throws {
        try await Self.withRecorder { recorder in
            let client = try await recorder.connect()
            try await client.sendText("post")
            #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "posted")
            try await client.sendText("timer")
            #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "timer fired")
            #expect(recorder.connectionLines.contains("event kind=1 id=7 cancelled=0"))
            await client.close()
        }
    }

    /// Refused, and said: once, with the plugin, the function and the reason; repeats within 10 s are counted in
    /// the next line instead of each writing one (a client can make a plugin repeat it at will).
    @Test func textThatIsNotUTF8IsRefusedOnTheWayOutAndLoggedOnce() async throws {
        let logs = LogRecorder()
        var elapsed = Duration.zero
        try await Self.withRecorder(logs: logs) { recorder in
            let client = try await recorder.connect()
            let started = ContinuousClock.now
            for _ in 0..<3 {
                try await client.sendText("bad-utf8")
                #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "3")  // BAD_ARGUMENT
            }
            elapsed = ContinuousClock.now - started
            await client.close()
        }
        let refused = logs.recorded.filter { $0.message.contains("call was refused (BAD_ARGUMENT)") }
        // One line per 10 s: a machine so loaded that the three took longer may log a second one.
        #expect(refused.count == 1 || (elapsed >= .seconds(10) && refused.count == 2), "\(elapsed)")
        let line = try #require(refused.first)
        #expect(line.level == .warning)
        #expect(line.metadata["plugin"] == "recorder")
        #expect(line.metadata["function"] == "send")
        #expect(line.metadata["reason"]?.contains("not valid UTF-8 (2 bytes)") == true, "\(line.metadata)")
        #expect(line.metadata["conn"] != nil)
    }

    /// A size_t past Int.max (a negative length cast) reaches Swift as a negative Int: every host function that
    /// takes a size refuses it (an unchecked one stopped the process), and the server goes on.
    @Test func sizesPastIntMaxAreRefusedNotFatal() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileFixture("hostile_sizes", into: directory)
        try await PluginFixtures.compileEcho(into: directory)
        try await TestServer.with(pluginDirectory: directory) { server in
            let client = try await RawWebSocketClient.connect(port: server.port, path: "/hostile")
            try await client.sendText("go")
            #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "3,3,3,3,3,3,3")
            await client.close()
            try await PluginLoadingTests.expectEchoServes(server)
        }
    }

    @Test func logsASlowCallbackWithItsDurationAndStillDelivers() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileFixture("slow_callback", into: directory)
        let logs = LogRecorder()
        try await TestServer.with(pluginDirectory: directory, logs: logs,
                                  configure: { $0.webSocket.slowCallbackThreshold = .milliseconds(20) }) { server in
            let client = try await RawWebSocketClient.connect(port: server.port, path: "/slow")
            try await client.sendText("take your time")
            #expect(try await withTimeout { try await client.readMessageOrClose() }.text == "take your time")
            let slow = logs.recorded.filter { $0.message == "slow endpoint callback" }
            #expect(slow.count == 1)
            let line = try #require(slow.first)
            #expect(line.level == .warning)
            #expect(line.metadata["endpoint"] == "slow")
            #expect(line.metadata["callback"] == "message")
            let duration = try #require(line.metadata["duration_ms"].flatMap(Double.init))
            #expect(duration >= 75 && duration < 2000, "\(duration) ms")
            await client.close()

            // on_upgrade is timed too; a quick one is not logged.
            let upgraded = try await RawWebSocketClient.connect(port: server.port, path: "/slow?slow-upgrade")
            let upgrades = logs.recorded.filter { $0.message == "slow endpoint callback" && $0.metadata["callback"] == "on_upgrade" }
            #expect(upgrades.count == 1, "\(logs.recorded)")
            #expect(upgrades.first?.metadata["route"] == "/slow")
            await upgraded.close()
        }
    }

    @Test func logsEachRefusedPluginOnceWithFileAndReason() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileFixture("instance_create_fails", into: directory)
        let logs = LogRecorder()
        try await TestServer.with(pluginDirectory: directory, logs: logs) { _ in
            let refusals = logs.recorded.filter { $0.message == "plugin refused" }
            #expect(refusals.count == 1)
            #expect(refusals.first?.level == .error)
            #expect(refusals.first?.metadata["file"] == "\(directory)/instance_create_fails.so")
            #expect(refusals.first?.metadata["reason"] == "instance_create failed: model server unreachable")
        }
    }

    @Test func aClientThatNeverReadsIsCutOffAtTheHardLimit() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileFixture("firehose", into: directory)
        try await PluginFixtures.compileEcho(into: directory)
        try await TestServer.with(pluginDirectory: directory, configure: {
            $0.webSocket.outboundHighWatermark = 1 << 20
            $0.webSocket.outboundHardLimit = 4 << 20
        }) { server in
            let report = try #require(server.loaded.first { $0.name == "firehose" }).stringFunction("firehose_report")
            let reader = try await RawWebSocketClient.connect(port: server.port, path: "/echo")
            let sleeper = try await RawWebSocketClient.connect(port: server.port, path: "/firehose")
            try await sleeper.sendText("go")  // and never read again
            #expect(await eventually { String(cString: report()).hasSuffix("close=1008") })
            let counts = String(cString: report())
            // 64 MiB were pushed; the host queued at most the hard limit plus one message, refused the rest,
            // told the plugin (on_error POLICY = 6), and closed with 1008.
            let fields = Dictionary(uniqueKeysWithValues: counts.split(separator: " ").map {
                let pair = $0.split(separator: "=")
                return (String(pair[0]), Int(pair[1])!)
            })
            let accepted = fields["ok"]! + fields["backpressure"]!
            #expect(accepted * 64 <= (4 << 10) + 64 + 2 * 1024, "\(counts): queued \(accepted * 64) KiB")
            #expect(fields["closed"]! > 900, "\(counts)")
            #expect(fields["error"] == 6, "\(counts)")
            // Only the reader is left: the plugin hears on_close before the host drops the connection from its table.
            #expect(await eventually { server.server.connections.count == 1 }, "\(server.server.connections.count)")
            try await reader.sendText("unaffected")
            #expect(try await withTimeout { try await reader.readMessageOrClose() }.text == "unaffected")
            await sleeper.close()
            await reader.close()
        }
    }

    /// Sends from a plugin thread and from the event loop, in an order the plugin fixes with a lock, reach the
    /// client in that order; so does a close from the loop after the thread's last send. (Written at once, a
    /// send made on the loop overtook the thread's sends still on their way to it.)
    @Test func sendsFromAnyThreadArriveInTheOrderTheyWereMade() async throws {
        let directory = try PluginFixtures.makeDirectory()
        try await PluginFixtures.compileFixture("interleave", into: directory)
        try await TestServer.with(pluginDirectory: directory) { server in
            try await withTimeout(seconds: 60) {
                for _ in 0..<3 {
                    let client = try await RawWebSocketClient.connect(port: server.port, path: "/interleave")
                    let count = 20_000
                    try await client.sendText("go \(count)")
                    var outOfOrder: [String] = []
                    for expected in 1...(count + count / 4) {
                        let text = try await client.readMessageOrClose().text
                        if text != String(expected) && outOfOrder.count < 5 { outOfOrder.append("\(expected): \(text)") }
                    }
                    #expect(outOfOrder.isEmpty, "expected number: received \(outOfOrder)")
                    #expect(try await client.readMessageOrClose().text == "done")
                    let close = try await client.readMessageOrClose()
                    #expect(close.opcode == 0x8 && close.closeCode == 1000)
                    await client.close()
                }
            }
        }
    }
}
