import AgentHostCore
import AgentHostPlugins
import AgentHostRunLog
import Foundation
import NIOCore

extension ServeSettings {
    /// Every scalar setting of `serve`, each declared once. The order is the order of `--help` and the README's
    /// table. Sections with a structure of their own (`auth`, `routes`, `access`/`scopes`, `plugin_config`) are
    /// read by `ConfigFileReader`.
    public static let catalog: [Setting] = [
        // Where it listens, what it loads.
        Setting("listen", .listenAddress, applies: .atRestart,
                help: "Address to listen on (port 0 picks a free port).",
                set: { $0.server.host = $1.host; $0.server.port = $1.port },
                get: { ListenAddress(host: $0.server.host, port: $0.server.port) }),
        Setting("plugins", \.plugins, .path, applies: .atRestart, help: "Directory of plugin shared objects (*.so)."),
        Setting("watch", \.watch, .boolean, applies: .atRestart,
                help: "Also reload when the plugin directory changes (inotify, debounced), not only on SIGHUP."),
        Setting("drain_timeout_ms", \.pluginManager.drainTimeout, .durationMilliseconds, applies: .onReload,
                help: "A replaced plugin generation's connections get close 1012 after this."),
        Setting("run_drain_timeout_ms", \.pluginManager.runDrainTimeout, .durationMilliseconds, applies: .onReload,
                help: "A replaced generation is kept this long for the runs it still writes; then they end."),
        Setting("allowlist", \.pluginManager.allowlistPath, .path, applies: .onReload,
                help: "sha256sum-format file: only the listed plugin files, with those hashes, may load."),
        Setting("max_plugin_size", \.pluginManager.maxFileSize, .bytes(4096...Int.max), applies: .onReload,
                help: "Larger plugin files are refused unread."),
        Setting("state_dir", \.stateDir, .path, applies: .atRestart,
                help: "Directory for what outlives the process: the run log's store (none: runs live in memory)."),

        // Processes and threads.
        Setting("workers", \.workers, .wholeNumber(1...256), applies: .atRestart,
                help: "Worker processes; above 1 a supervisor holds the port and restarts workers that die."),
        // A thread each: a thousand is already a typo, not a machine.
        Setting("event_loops", \.eventLoops, .eventLoops(max: 1024), applies: .atRestart,
                help: "Event-loop threads (per worker process)."),
        // A callback is seen running by a clock with a resolution of a few milliseconds, checked every limit / 4:
        // below 100 ms a normal callback spanning a tick would look stuck.
        Setting("watchdog_ms", \.watchdog, .durationMillisecondsOrOff(min: 100), applies: .atRestart,
                help: "With workers, a plugin callback blocking an event loop this long gets its worker replaced."),
        Setting("log_level", \.logLevel, .logLevel, applies: .atRestart, help: "Log level."),

        // Admin access. The token is not a flag: a command line is visible to every user of the machine.
        Setting("admin_token", flag: "", \.adminToken, .secret, applies: .onReload,
                help: "Bearer token of the admin routes /plugins and /metrics (or AGENTHOST_ADMIN_TOKEN)."),
        Setting("admin_trust_loopback", \.server.adminTrustsLoopback, .boolean, applies: .onReload,
                help: "Admin routes also answer loopback peers without the token (local development only)."),

        // Requests and connections.
        Setting("max_header_size", \.server.maxHeaderSize, .bytes(1024...Int.max), applies: .onReload,
                help: "Request header bytes before 400."),
        Setting("max_connections", \.server.maxConnections, .wholeNumber(0...Int.max), applies: .onReload,
                help: "Open connections; the next request gets 503 (0: no limit)."),
        Setting("max_connections_per_address", \.server.maxConnectionsPerAddress, .wholeNumber(0...Int.max),
                applies: .onReload, help: "Open connections per IPv4 address or IPv6 /64; the next gets 429 (0: no limit)."),
        Setting("allowed_origins", \.server.defaultRoutePolicy.allowedOrigins, .strings, applies: .onReload,
                help: "Browser Origins allowed on routes without their own list; others get 403 (default: any)."),
        Setting("handshake_timeout_ms", .milliseconds, applies: .onReload,
                help: "A connection must finish its first request or upgrade, and have its answer written, in this time.",
                set: { $0.server.handshakeTimeout = $1; $0.server.http.requestTimeout = $1 },
                get: { $0.server.handshakeTimeout }),
        Setting("keepalive_timeout_ms", \.server.http.keepAliveTimeout, .milliseconds, applies: .onReload,
                help: "A kept-alive plain HTTP connection must send its next request's head within this time."),
        Setting("max_request_body_size", \.server.http.maxBodySize, .bytes(0...Int.max), applies: .onReload,
                help: "Larger plain HTTP request bodies get 413."),
        Setting("shutdown_timeout_ms", \.server.shutdownTimeout, .milliseconds, applies: .onReload,
                help: "How long close handshakes get at shutdown."),
        Setting("slow_callback_ms", \.server.webSocket.slowCallbackThreshold, .milliseconds, applies: .onReload,
                help: "Plugin callbacks slower than this are logged with their duration."),

        // TLS: the paths are fixed at start; the files they name reload on SIGHUP.
        Setting("tls_cert", \.tlsCert, .path, applies: .atRestart,
                help: "PEM certificate chain (server certificate first): serve wss:// with TLS 1.2+."),
        Setting("tls_key", \.tlsKey, .path, applies: .atRestart, help: "PEM private key of tls_cert."),
        Setting("tls_client_ca", \.tlsClientCA, .path, applies: .atRestart,
                help: "PEM CA bundle: require client certificates (mTLS); the certificate subject is the identity."),

        // WebSocket. The flags drop the section's name, as the first four did before there were sections.
        // A frame (with its header and the start of the next read) and a joined message are each held in one
        // ByteBuffer, which holds at most 4 GiB: a limit near that crashed the process on a frame that size, so
        // both stop at 2 GiB (far past any real message).
        Setting("websocket.max_frame_size", flag: "max-frame-size", \.server.webSocket.maxFrameSize,
                .bytes(125...(1 << 31)), applies: .onReload, help: "Larger frames: close 1009."),
        Setting("websocket.max_message_size", flag: "max-message-size", \.server.webSocket.maxMessageSize,
                .bytes(125...(1 << 31)), applies: .onReload, help: "Larger messages (fragments joined): close 1009."),
        Setting("websocket.ping_interval_ms", flag: "ping-interval-ms", \.server.webSocket.pingInterval,
                .millisecondsOrOff, applies: .onReload, help: "Ping a quiet connection (0: off)."),
        Setting("websocket.ping_timeout_ms", flag: "ping-timeout-ms", \.server.webSocket.pingTimeout, .milliseconds,
                applies: .onReload, help: "Drop a peer that answers nothing this long after a ping."),
        Setting("websocket.idle_timeout_ms", flag: "idle-timeout-ms", \.server.webSocket.idleTimeout,
                .millisecondsOrOff, applies: .onReload, help: "Close 1001 after this long without a message (0: off)."),
        Setting("websocket.close_timeout_ms", flag: "close-timeout-ms", \.server.webSocket.closeTimeout, .milliseconds,
                applies: .onReload, help: "Wait this long for the client's close frame after ours."),
        Setting("websocket.outbound_high_watermark", flag: "outbound-high-watermark",
                \.server.webSocket.outboundHighWatermark, .bytes(1...Int.max), applies: .onReload,
                help: "A plugin's send returns BACKPRESSURE above this many queued bytes."),
        Setting("websocket.outbound_low_watermark", flag: "outbound-low-watermark",
                \.server.webSocket.outboundLowWatermark, .bytes(1...Int.max), applies: .onReload,
                help: "The plugin is told it may write again below this (NIO's write watermarks need 1 or more)."),
        Setting("websocket.outbound_hard_limit", flag: "outbound-hard-limit", \.server.webSocket.outboundHardLimit,
                .bytes(1...Int.max), applies: .onReload, help: "Past this the client is not reading: close 1008."),
        // The rate limiter counts credit in nanoseconds per frame: above 10^9 frames/s a frame would cost 0 ns,
        // and a burst times the cost of a frame must fit in 64 bits (2^31 x 10^9 does).
        Setting("websocket.max_messages_per_second", flag: "max-messages-per-second",
                \.server.webSocket.maxMessagesPerSecond, .wholeNumber(0...1_000_000_000), applies: .onReload,
                help: "Average inbound frame rate before close 1008 (0: no limit)."),
        Setting("websocket.message_burst", flag: "message-burst", \.server.webSocket.messageBurst,
                .wholeNumber(1...Int(Int32.max)), applies: .onReload,
                help: "Frames a connection may send at once before the rate applies."),

        // Run logs: fixed at start (the store is opened with them).
        Setting("run_log.max_bytes_per_log", \.runLog.retention.maxBytesPerLog, .bytes(1024...Int.max),
                applies: .atRestart, help: "Entry bytes kept per run; past it the oldest entries go."),
        Setting("run_log.max_ended_logs", \.runLog.retention.maxEndedLogs, .wholeNumber(0...Int.max),
                applies: .atRestart, help: "Ended runs kept; the oldest beyond go."),
        // At most a century: the store subtracts it, in milliseconds, from the clock (Int64).
        Setting("run_log.max_ended_age_seconds", .wholeNumber(1...3_155_760_000), applies: .atRestart,
                help: "Ended runs older than this go.",
                set: { $0.runLog.retention.maxEndedAgeSeconds = Int64($1) },
                get: { Int($0.runLog.retention.maxEndedAgeSeconds) }),
        Setting("run_log.max_total_bytes", \.runLog.retention.maxTotalBytes, .bytes((1 << 20)...Int.max),
                applies: .atRestart, help: "Entry bytes all ended runs may hold together (without state_dir: 256 MiB)."),
        Setting("run_log.max_ended_logs_per_owner", \.runLog.retention.maxEndedLogsPerOwner, .wholeNumber(0...Int.max),
                applies: .atRestart, help: "Ended runs kept per identity."),
        Setting("run_log.max_ended_bytes_per_owner", \.runLog.retention.maxEndedBytesPerOwner,
                .bytes((1 << 20)...Int.max), applies: .atRestart,
                help: "Entry bytes one identity's ended runs may hold (without state_dir: 32 MiB)."),
        Setting("run_log.max_entry_bytes", \.runLog.maxEntryBytes, .bytes(1...(64 << 20)), applies: .atRestart,
                help: "Largest entry log_append accepts."),
        Setting("run_log.max_unpersisted_bytes", \.runLog.maxUnpersistedBytes, .bytes((1 << 20)...Int.max),
                applies: .atRestart, help: "Entry bytes waiting for the store before appends are refused."),
        // Past the idle interval (100 ms) a busy store would be written no more often than an idle one is polled.
        Setting("run_log.flush_interval_ms", \.runLog.flushInterval, .milliseconds(max: 100), applies: .atRestart,
                help: "How often appended entries are written to the store."),
    ]

    /// The setting with this flag (without dashes), if any.
    public static func setting(flag: String) -> Setting? {
        Self.catalog.first { $0.flag == flag }
    }
}
