/// The host's release version: what `host_info` tells plugins and `/plugins` shows. Bumped with each release;
/// the plugin ABI has its own version (AGENTHOST_ABI_MAJOR/MINOR in agenthost_plugin.h).
public enum AgentHostVersion {
    public static let current = "0.12.0"
}
