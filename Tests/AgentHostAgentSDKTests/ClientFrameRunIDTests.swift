import Testing
@testable import AgentHostAgentSDK

/// F14: a numeric `run_id` bypassed the documented charset (1e+300 became the id "1e+300").
@Suite("client frame run ids")
struct ClientFrameRunIDTests {
    func runID(of frame: String) throws -> String? {
        guard case .stop(let runID, _) = try ClientFrame.parse(frame) else {
            Issue.record("not a stop frame")
            return nil
        }
        return runID
    }

    @Test(arguments: ["1e300", "-5", "0.5", "1e16", "123456789012345678901234567890"])
    func numbersThatAreNotWholeNonNegativeIdsAreRefused(_ number: String) {
        #expect(throws: ClientFrame.Invalid.self) { try self.runID(of: #"{"type":"stop","run_id":\#(number)}"#) }
    }

    @Test func studiosIntegerIdsAreTheirDigits() throws {
        #expect(try self.runID(of: #"{"type":"stop","run_id":42}"#) == "42")
        #expect(try self.runID(of: #"{"type":"stop","run_id":0}"#) == "0")
    }

    @Test func stringsOutsideTheCharsetAreRefused() {
        #expect(throws: ClientFrame.Invalid.self) { try self.runID(of: #"{"type":"stop","run_id":"a b"}"#) }
        #expect(throws: ClientFrame.Invalid.self) { try self.runID(of: #"{"type":"stop","run_id":"1e+300"}"#) }
    }
}
