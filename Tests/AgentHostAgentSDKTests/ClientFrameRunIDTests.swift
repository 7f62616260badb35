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

    /// Review 2, item 4: 1.0000000000000001 reads as the double 1, so it named the run "1" too.
    @Test(arguments: ["1.0000000000000001", "1.0", "42.0", "1e2", "1E2", "0.0"])
    func literalsWithAFractionOrAnExponentAreRefused(_ number: String) {
        #expect(throws: ClientFrame.Invalid.self) { try self.runID(of: #"{"type":"stop","run_id":\#(number)}"#) }
    }

    @Test func studiosIntegerIdsAreTheirDigits() throws {
        #expect(try self.runID(of: #"{"type":"stop","run_id":42}"#) == "42")
        #expect(try self.runID(of: #"{"type":"stop","run_id":0}"#) == "0")
    }

    /// Review nit: 2^53 + 1 reads as the double 2^53, so accepting 2^53 made two JSON ids one run id.
    @Test func idsOf2To53AndAboveAreRefused() throws {
        #expect(try self.runID(of: #"{"type":"stop","run_id":9007199254740991}"#) == "9007199254740991")
        #expect(throws: ClientFrame.Invalid.self) { try self.runID(of: #"{"type":"stop","run_id":9007199254740992}"#) }
        #expect(throws: ClientFrame.Invalid.self) { try self.runID(of: #"{"type":"stop","run_id":9007199254740993}"#) }
    }

    @Test func resumeTokensMatchOnlyThemselves() {
        let token = ResumeToken.make()
        #expect(ResumeToken.matches(token, token))
        #expect(ResumeToken.matches(String(token), token))
        #expect(!ResumeToken.matches(String(token.dropLast()) + "x", token))
        #expect(!ResumeToken.matches(String(token.dropLast()), token))
        #expect(!ResumeToken.matches(token + "0", token))
        #expect(!ResumeToken.matches("", token))
        #expect(!ResumeToken.matches(nil, token))
        #expect(!ResumeToken.matches(token, nil))
        #expect(ResumeToken.matches(nil, nil))
    }

    @Test func stringsOutsideTheCharsetAreRefused() {
        #expect(throws: ClientFrame.Invalid.self) { try self.runID(of: #"{"type":"stop","run_id":"a b"}"#) }
        #expect(throws: ClientFrame.Invalid.self) { try self.runID(of: #"{"type":"stop","run_id":"1e+300"}"#) }
    }
}
