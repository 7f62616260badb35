/// Whose replay budget a run's buffered frames count against: its owner's identity, or for anonymous starters
/// (who have none) the address group they connected from, so anonymous sockets from one machine share one budget.
enum ReplayHolder: Hashable, Sendable {
    case identity(RunOwner)
    case address(String)

    init(owner: RunOwner, addressGroup: String) {
        self = owner.isAnonymous ? .address(addressGroup) : .identity(owner)
    }
}
