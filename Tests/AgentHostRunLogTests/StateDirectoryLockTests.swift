import AgentHostRunLog
import Foundation
import Glibc
import Testing

/// Who may own a state dir: the server's user or root, writable by its owner alone.
@Suite("State dir lock")
struct StateDirectoryLockTests {
    static func refusal(_ directory: String) -> StateDirectoryLock.Failure? {
        do {
            _ = try StateDirectoryLock(directory: directory)
            return nil
        } catch {
            return error
        }
    }

    @Test("its own 0700 dir is locked; one others may write is refused")
    func modes() throws {
        let parent = TemporaryDirectory()
        defer { parent.remove() }
        let own = parent.path + "/own"
        #expect(Self.refusal(own) == nil)
        let open = parent.path + "/open"
        #expect(mkdir(open, 0o700) == 0 && chmod(open, 0o777) == 0)
        let failure = try #require(Self.refusal(open))
        #expect(failure.refusesStart)
        #expect(failure.description.contains("can be written by others (mode 777)"), "\(failure)")
    }

    @Test("a dir of another user is refused (as root: one of uid 65534; root's own dirs are taken)")
    func owners() throws {
        let parent = TemporaryDirectory()
        defer { parent.remove() }
        let foreign = parent.path + "/foreign"
        #expect(mkdir(foreign, 0o700) == 0)
        guard geteuid() == 0 else { return }  // only root can give a dir away; CI runs as root
        #expect(chown(foreign, 65534, 65534) == 0)
        let failure = try #require(Self.refusal(foreign))
        #expect(failure.refusesStart)
        #expect(failure.description.contains("belongs to uid 65534"), "\(failure)")
    }
}
