import Testing

/// The suites that start several server processes per test (worker supervisors with their workers, AutoGen worker
/// pools, kills and restarts) run one after another, nested here. Started together at the beginning of a run, beside
/// every other suite, they kept a 2-core machine busy for seconds (in a fresh clone: twice in two runs), and other
/// suites' 10 s connect deadlines fired while their servers waited for a core.
@Suite(.serialized) enum ProcessHeavyTests {}
