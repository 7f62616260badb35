import Foundation
import Glibc
import Testing

/// The wordstream example through the real server: examples are what plugin authors copy, so it bounds what it
/// queues for a client.
@Suite("wordstream example")
struct WordStreamTests {
    /// A client that sends prompts and never reads its replies: before the bound every prompt was queued for as
    /// long as the socket lived (+30-75 MB per connection); now the 17th waiting prompt closes it with 1008.
    @Test func aClientThatSendsButNeverReadsIsClosedWhenItsQueueIsFull() async throws {
        let server = try await ServerProcess.start(arguments: ["--plugins", try ServerProcessTests.builtPluginDirectory()])
        let client = try await RawWebSocketClient.connect(port: server.port, path: "/wordstream")
        let prompt = String(repeating: "word ", count: 200)
        do {
            for _ in 0..<100 { try await client.sendText(prompt) }
        } catch {
            // The server may stop taking bytes once it closed: the close is what is checked below.
        }
        // Only now read: the few words sent before the 17th prompt arrived, then the close. Without the bound the
        // 100 replies would stream for 400 s (20 ms a word) and no close would come.
        let close = try await withTimeout(seconds: 20) {
            while true {
                let frame = try await client.readMessageOrClose()
                if frame.opcode == 0x8 { return frame }
            }
        }
        #expect(close.closeCode == 1008)
        #expect(close.text.contains("too many prompts queued"), "\(close.text)")
        await client.close()
        server.signal(SIGTERM)
        _ = try await server.waitForExit()
    }
}
