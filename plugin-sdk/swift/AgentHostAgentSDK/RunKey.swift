/// How the registry finds a run: its id, scoped to the route path it was started on and to its owner. So the same
/// id used by two identities names two runs (nobody can squat or probe another's id), a run is resumed only
/// through the route (and so the auth policy) it was started on, and Studio's `/api/ws/runs/9999` never finds the
/// run of `/api/ws/runs/42`.
///
/// Anonymous starters have no identity to tell them apart: their runs are keyed by the run's resume token, a
/// random capability sent to the starter alone (in the run's first frame).
struct RunKey: Hashable, Sendable {
    let route: String
    let owner: RunOwner
    /// Anonymous owners only; nil for identified ones.
    let resumeToken: String?
    let id: String

    init(route: String, owner: RunOwner, resumeToken: String?, id: String) {
        self.route = route
        self.owner = owner
        self.resumeToken = owner.isAnonymous ? resumeToken : nil
        self.id = id
    }

    /// The token compared in constant time: a dictionary lookup compares the key it finds in the bucket.
    static func == (lhs: RunKey, rhs: RunKey) -> Bool {
        lhs.route == rhs.route && lhs.owner == rhs.owner && lhs.id == rhs.id
            && ResumeToken.matches(lhs.resumeToken, rhs.resumeToken)
    }
}
