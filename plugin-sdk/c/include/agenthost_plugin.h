/*
 * agenthost_plugin.h: the AgentHost plugin ABI, version 1.
 *
 * This header is the single source of truth of the contract between the AgentHost server ("the host") and an
 * endpoint plugin (a shared object loaded with dlopen). Host and plugins both include it. It depends on
 * <stdint.h> and <stddef.h> only, so a plugin can be written in C, Swift, or any language with a C ABI.
 *
 * VERSIONING
 *   - The major version is in the entry symbol's name (agenthost_plugin_entry_v1). A breaking change gets a new
 *     symbol, so an old host looking for _v1 never calls a _v2 plugin by mistake: dlsym simply fails.
 *   - Minor versions only append fields at the end of structs. Every struct starts with `struct_size`: the
 *     reader uses a field only if struct_size says it is there. A host refuses a descriptor shorter than
 *     AGENTHOST_PLUGIN_V1_MIN_SIZE.
 *
 * OWNERSHIP AND THREADS
 *   - Borrowed in, copied out. Every pointer the host passes to a callback (message bytes, reason, identity,
 *     route) is valid only until that callback returns; copy what you keep. Every host function that takes
 *     bytes (send, close reason, log) copies them before it returns.
 *   - All callbacks of one connection (on_open, on_message, on_event, on_writable, on_error, on_close) run on
 *     that connection's event loop thread, one at a time, never concurrently with each other. Callbacks of
 *     different connections may run concurrently on different threads: instance state shared by connections
 *     must be synchronised by the plugin.
 *   - Host functions are safe to call from any thread. A host function never calls back into the plugin
 *     synchronously: its effects (a write, a close, a posted event) happen after it returns.
 *   - The sends and the close of one connection reach the client in the order the calls returned, whichever
 *     threads made them: a send made on the event loop never overtakes one a plugin thread made before it.
 *   - Callbacks must not block: they run on an event loop serving many connections. Do slow work on your own
 *     threads and hand results back with post(). The host logs every callback that runs longer than its
 *     slow-callback threshold, with the plugin name and duration.
 *
 * LIFECYCLE
 *   entry -> instance_create -> { on_open -> (on_message | on_event | on_writable)* -> [on_error] -> on_close }*
 *         -> [on_drain] -> instance_drop
 *   Instance events (on_event with conn 0: run log signals, instance posts and timers) come between
 *   instance_create and instance_drop, beside the connections' callbacks.
 *   Exactly one on_close follows every on_open that returned AGENTHOST_OK. on_open that returns an error gets no
 *   on_close (the host closes the connection with 1011).
 *
 * CONNECTION HANDLES
 *   A connection is named by an agenthost_conn_t: a 64-bit value holding a slot and a generation. It is NOT a
 *   pointer: a handle used after its connection closed (or after its slot was reused by a new connection) is
 *   detected and the host function returns AGENTHOST_CLOSED; it can never touch freed memory. The handle passed
 *   to on_open stays valid until on_close returns. A plugin that uses the handle after on_close (for example from
 *   a worker thread that may race with the close) calls retain_conn() while it is open and release_conn() when
 *   done; until then the host keeps the slot reserved, so the stale handle keeps answering AGENTHOST_CLOSED.
 */
#ifndef AGENTHOST_PLUGIN_H
#define AGENTHOST_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AGENTHOST_ABI_MAJOR 1
#define AGENTHOST_ABI_MINOR 2

/* The symbol every plugin exports (with default visibility). See agenthost_plugin_entry_v1_fn below. */
#define AGENTHOST_PLUGIN_ENTRY_SYMBOL "agenthost_plugin_entry_v1"

/* ---------------------------------------------------------------------------------------------------------------
 * Status codes returned by host functions and by plugin callbacks that can fail.
 * ------------------------------------------------------------------------------------------------------------- */
typedef int32_t agenthost_status_t;
enum {
    AGENTHOST_OK = 0,
    /* The connection is closed, closing, or the handle is stale. Nothing was done. */
    AGENTHOST_CLOSED = 1,
    /* send: the message WAS queued, but the connection's outbound queue is above its high-water mark.
     * Stop sending until on_writable is called. Past the hard limit the host closes the connection (1008). */
    AGENTHOST_BACKPRESSURE = 2,
    /* An argument is invalid (NULL pointer with nonzero length, text that is not UTF-8, a close code that may
     * not be sent, an unknown message kind, a message larger than the connection's maximum). Nothing was done. */
    AGENTHOST_BAD_ARGUMENT = 3,
    /* A generic failure of a plugin callback (on_open refusing the connection). */
    AGENTHOST_ERROR = 4,
    /* (1.1) Run log: no such log on this route, or it is not the caller's. The two are never told apart, so a
     * client cannot probe for other identities' runs. */
    AGENTHOST_NOT_FOUND = 5,
    /* (1.1) log_create: a log with this key already exists on this route. */
    AGENTHOST_EXISTS = 6,
    /* (1.1) Run log: the call cannot be served now (the store cannot be read, the host is shutting down).
     * Live logs keep working in memory when the store cannot be written; this is for what needs the store. */
    AGENTHOST_UNAVAILABLE = 7,
};

/* Message kinds for on_message and send. */
typedef int32_t agenthost_message_kind_t;
enum {
    AGENTHOST_MESSAGE_TEXT = 1,   /* UTF-8 text; inbound text is validated by the host, outbound is checked */
    AGENTHOST_MESSAGE_BINARY = 2,
};

/* Log levels for log(). */
typedef int32_t agenthost_log_level_t;
enum {
    AGENTHOST_LOG_TRACE = 0,
    AGENTHOST_LOG_DEBUG = 1,
    AGENTHOST_LOG_INFO = 2,
    AGENTHOST_LOG_WARNING = 3,
    AGENTHOST_LOG_ERROR = 4,
};

/* Kinds of deferred events delivered to on_event. */
typedef int32_t agenthost_event_kind_t;
enum {
    AGENTHOST_EVENT_POSTED = 1, /* from post(): `data` is the plugin's own pointer */
    AGENTHOST_EVENT_TIMER = 2,  /* from timer_start(): `data` is the pointer given to timer_start */
    /* (1.1) Run log events, see RUN LOG below. `log_seq` and `log_bytes` of agenthost_event_v1 are set. */
    AGENTHOST_EVENT_LOG_ENTRY = 3,  /* from log_watch: one entry (`log_seq`, `log_bytes`), in order */
    AGENTHOST_EVENT_LOG_END = 4,    /* from log_watch: the last event of a watch (`log_bytes`: the end status) */
    AGENTHOST_EVENT_LOG_SIGNAL = 5, /* from log_signal, to the log's writer (`log_bytes`: the signal) */
};

/* Kinds of errors reported to on_error (always followed by on_close). */
typedef int32_t agenthost_error_kind_t;
enum {
    AGENTHOST_ERROR_PROTOCOL = 1,      /* the client broke RFC 6455 (close code 1002) */
    AGENTHOST_ERROR_INVALID_DATA = 2,  /* a text message was not UTF-8 (1007) */
    AGENTHOST_ERROR_TOO_LARGE = 3,     /* a frame or message exceeded the configured maximum (1009) */
    AGENTHOST_ERROR_TIMEOUT = 4,       /* ping or idle timeout */
    AGENTHOST_ERROR_IO = 5,            /* the transport failed (reset, abrupt disconnect) */
    AGENTHOST_ERROR_POLICY = 6,        /* a limit was violated (1008), e.g. outbound queue hard limit */
};

/* A connection handle: opaque 64-bit value, see CONNECTION HANDLES above. 0 is never a valid handle. */
typedef uint64_t agenthost_conn_t;

/* (1.1) A run log handle, owned by the plugin instance that opened it: see RUN LOG below. 0 is never valid. */
typedef uint64_t agenthost_log_t;

/* Opaque per-instance context owned by the host, given to instance_create; identifies the plugin in log()
 * and timer/post calls that are not tied to a connection. Valid until instance_drop returns. */
typedef struct agenthost_instance_ctx agenthost_instance_ctx;

/* A borrowed byte string: valid only for the duration of the callback it was passed to. Not NUL-terminated. */
typedef struct agenthost_bytes {
    const uint8_t *ptr;
    size_t len;
} agenthost_bytes;

/* ---------------------------------------------------------------------------------------------------------------
 * What the host tells on_open about the new connection. Borrowed: valid during on_open only.
 * ------------------------------------------------------------------------------------------------------------- */
typedef struct agenthost_open_info_v1 {
    uint32_t struct_size;
    /* The route the client asked for (the path, without the query), e.g. "/echo". */
    agenthost_bytes route;
    /* The full request target (path and query) of the upgrade request. */
    agenthost_bytes request_target;
    /* The peer address as text, e.g. "127.0.0.1:53211" or "[::1]:53211". */
    agenthost_bytes remote_address;
    /* The selected subprotocol (Sec-WebSocket-Protocol), empty if none. */
    agenthost_bytes subprotocol;
    /* The authenticated identity. All empty when the route is public and the client sent no credentials.
     * identity_issuer says which credential it is: a JWT's "iss" claim (may be empty if the token has none),
     * "api-key" for an API key, "mtls:" followed by the issuing CA's name for a client certificate. Tokens
     * claiming "api-key" or an "mtls:" issuer are refused, so (issuer, subject) names one party: key ownership
     * on both, never on the subject alone. An empty subject (a JWT without "sub") names nobody. */
    agenthost_bytes identity_subject;
    agenthost_bytes identity_issuer;
    /* Scopes/roles, space-separated. */
    agenthost_bytes identity_scopes;
    /* All verified claims as a JSON object ("{}" when none). */
    agenthost_bytes identity_claims_json;
} agenthost_open_info_v1;

/* A deferred event, delivered to on_event. Borrowed: valid during on_event only. */
typedef struct agenthost_event_v1 {
    uint32_t struct_size;
    agenthost_event_kind_t kind;
    uint64_t id;  /* the id given to post() or the timer id returned by timer_start() */
    void *data;   /* the pointer given to post()/timer_start(); the plugin owns it */
    /* 1 if the event will not happen: its timer was cancelled with timer_cancel, or the connection closed
     * before delivery. It is delivered only so the plugin can release `data`. When the connection is closed,
     * `conn_data` is NULL and on_close has already run. Every post() that returned OK and every timer_start()
     * that returned OK is delivered exactly once, fired or cancelled. */
    int32_t cancelled;

    /* (1.1) Run log events only (read them only when struct_size covers them and `kind` is a LOG_ kind).
     * LOG_ENTRY: the entry's sequence number and bytes. LOG_END: the last sequence number delivered (0 if none)
     * and the log's end status ("complete", "error", ...; empty when the watch was cancelled). LOG_SIGNAL: 0 and
     * the signal's bytes. `log_bytes` is borrowed: valid during on_event only. */
    uint64_t log_seq;
    agenthost_bytes log_bytes;
} agenthost_event_v1;

/* (1.1) What log_info tells about a run log. The caller sets struct_size; the host fills the fields it covers. */
typedef struct agenthost_log_info_v1 {
    uint32_t struct_size;
    int32_t ended;        /* 1 once log_end was called (or the host ended the log, see RUN LOG) */
    uint64_t first_seq;   /* the oldest entry still kept (retention may drop older ones); last_seq + 1 if none */
    uint64_t last_seq;    /* the newest entry's sequence number; 0 when the log is empty */
    int64_t created_unix_ms;
    int64_t ended_unix_ms; /* 0 while live */
    char status[32];       /* NUL-terminated: "live", or the status given to log_end (truncated to 31 bytes) */
} agenthost_log_info_v1;

/* (1.2) Metrics a plugin defines (metric_define) and updates (metric_add, metric_set, metric_observe). */
typedef int32_t agenthost_metric_kind_t;
enum {
    AGENTHOST_METRIC_COUNTER = 1,   /* only goes up: metric_add with a value >= 0 */
    AGENTHOST_METRIC_GAUGE = 2,     /* metric_set, or metric_add with any value */
    AGENTHOST_METRIC_HISTOGRAM = 3, /* metric_observe */
};

/* (1.2) A metric handle from metric_define. 0 is never valid. */
typedef uint64_t agenthost_metric_t;

/* (1.2) What metric_define declares. The host copies what it needs before metric_define returns. */
typedef struct agenthost_metric_def_v1 {
    uint32_t struct_size;
    agenthost_metric_kind_t kind;
    /* 1-100 characters of [a-z0-9_], not starting with a digit; exported as "agenthost_plugin_" + name (so pick
     * names your plugin owns, e.g. "chat_messages_total"). */
    const char *name;
    /* Optional (NULL or ""): the HELP line, at most 256 bytes of UTF-8. */
    const char *help;
    /* 0-8 label names of [a-z0-9_] (not starting with a digit or "__", not "plugin": the host adds plugin="NAME"). */
    const char *const *label_names;
    size_t label_count;
    /* Histograms only: 1-64 strictly increasing, finite upper bounds; NULL (and 0) for the default
     * 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10. */
    const double *buckets;
    size_t bucket_count;
} agenthost_metric_def_v1;

/* (1.2) One request header, as on_upgrade sees it. `name` is lower-case. Borrowed: valid during on_upgrade only. */
typedef struct agenthost_header_v1 {
    agenthost_bytes name;
    agenthost_bytes value;
} agenthost_header_v1;

/* (1.2) The upgrade request on_upgrade decides on, after the host's own checks and authentication passed.
 * Borrowed: valid during on_upgrade only. Credentials are not shown: the Authorization header, a `token` query
 * parameter and `bearer.` subprotocol entries are removed (the identity fields say who it is), as are offered
 * subprotocols that are not HTTP tokens. */
typedef struct agenthost_upgrade_request_v1 {
    uint32_t struct_size;
    agenthost_bytes route;          /* the path, e.g. "/chat" */
    agenthost_bytes request_target; /* path and query, as on_open gets it */
    agenthost_bytes remote_address;
    /* Every header of the request, in order, except Authorization and Sec-WebSocket-Protocol (see subprotocols). */
    const agenthost_header_v1 *headers;
    size_t header_count;
    const agenthost_bytes *subprotocols; /* the Sec-WebSocket-Protocol entries the client offered, in order */
    size_t subprotocol_count;
    agenthost_bytes identity_subject;
    agenthost_bytes identity_issuer;
    agenthost_bytes identity_scopes;
    agenthost_bytes identity_claims_json;
} agenthost_upgrade_request_v1;

/* (1.2) What on_upgrade answers. The host fills it with the defaults before the call. */
typedef struct agenthost_upgrade_response_v1 {
    uint32_t struct_size;
    /* Accepting: the index in `subprotocols` of the one to select, or -1 (the default) for the host's own choice
     * (the first entry that is a valid token). Any other index out of range fails the upgrade with 500. */
    int32_t subprotocol;
    /* Refusing: the HTTP status (400-599; anything else is sent as 500) and a body of `body_len` bytes the plugin
     * copied into the host's buffer at `body` (capacity `body_capacity`, 1024: longer is cut). Write into it; do
     * not point `body` elsewhere (the host reads its own buffer). Default 403 and an empty body. */
    uint16_t status;
    uint8_t *body;
    size_t body_capacity;
    size_t body_len;
} agenthost_upgrade_response_v1;

/* (1.2) What host_info tells about the host. The caller sets struct_size; the host fills the fields it covers. */
typedef struct agenthost_host_info_v1 {
    uint32_t struct_size;
    uint32_t abi_major;
    uint32_t abi_minor;
    char host_version[32]; /* NUL-terminated, e.g. "0.12.0" */
} agenthost_host_info_v1;

/* ---------------------------------------------------------------------------------------------------------------
 * The host function table. Passed to instance_create; valid until instance_drop returns. Every function may be
 * called from any thread unless stated otherwise, copies what it is given, and never calls the plugin back
 * synchronously.
 * ------------------------------------------------------------------------------------------------------------- */
typedef struct agenthost_host_api_v1 {
    uint32_t struct_size;
    uint32_t abi_major; /* AGENTHOST_ABI_MAJOR of the host */
    uint32_t abi_minor; /* AGENTHOST_ABI_MINOR of the host: fields past struct_size are absent */

    /* Queue one message for the client. `kind` is AGENTHOST_MESSAGE_TEXT (must be valid UTF-8) or _BINARY.
     * The bytes are copied before the call returns. Writes are flushed in batches: by the end of the current
     * callback when called from a callback, otherwise promptly on the connection's event loop.
     * Returns OK, BACKPRESSURE (queued, but slow down until on_writable), CLOSED, or BAD_ARGUMENT. */
    agenthost_status_t (*send)(agenthost_conn_t conn, agenthost_message_kind_t kind, const uint8_t *data,
                               size_t len);

    /* Start the close handshake with `code` and a UTF-8 `reason` of at most 123 bytes. Codes that may not be
     * sent on the wire (below 1000, 1004, 1005, 1006, 1015, 1016-2999 unassigned, 5000 and above) return
     * BAD_ARGUMENT. on_close follows once the handshake completes or times out. */
    agenthost_status_t (*close)(agenthost_conn_t conn, uint16_t code, const uint8_t *reason, size_t reason_len);

    /* Write a log line attributed to the plugin instance (and connection, if `conn` is not 0). */
    void (*log)(agenthost_instance_ctx *ctx, agenthost_conn_t conn, agenthost_log_level_t level,
                const uint8_t *message, size_t len);

    /* Deliver on_event(kind = AGENTHOST_EVENT_POSTED, id, data) on the connection's event loop, after the
     * current callback (if any) returns. This is how work finished on a plugin thread gets back to the
     * connection. Returns OK or CLOSED (then nothing will be delivered; `data` stays the plugin's). */
    agenthost_status_t (*post)(agenthost_conn_t conn, uint64_t id, void *data);

    /* Schedule on_event(kind = AGENTHOST_EVENT_TIMER) after `delay_ms` milliseconds on the connection's event
     * loop. Writes the timer id (never 0) to *timer_id. A timer still pending when the connection closes is
     * delivered with cancelled = 1 after on_close. Returns OK, CLOSED, or BAD_ARGUMENT (timer_id NULL). */
    agenthost_status_t (*timer_start)(agenthost_conn_t conn, uint64_t delay_ms, void *data, uint64_t *timer_id);

    /* Cancel a timer. OK if it was cancelled before it fired (it is then delivered once with cancelled = 1);
     * CLOSED if it already fired, was cancelled, or the connection is closed. */
    agenthost_status_t (*timer_cancel)(agenthost_conn_t conn, uint64_t timer_id);

    /* Keep a handle's slot reserved past on_close (see CONNECTION HANDLES). OK or CLOSED. */
    agenthost_status_t (*retain_conn)(agenthost_conn_t conn);
    /* Give back one retain. OK, or BAD_ARGUMENT if the handle holds no retain. */
    agenthost_status_t (*release_conn)(agenthost_conn_t conn);

    /* ----- (1.1) RUN LOG. Present when abi_minor >= 1 (and struct_size covers them). ---------------------------
     *
     * Append-only logs the host keeps for plugins, outliving any socket, plugin generation, worker process and
     * host restart (with a state dir). A log is named by a key of the plugin's choosing (1-128 bytes) within the
     * route of the connection that creates it and its owner: that connection's identity (issuer and subject),
     * or, when the connection has no subject (anonymous), whoever presents the same `secret` (a capability the
     * plugin gave the starter alone; the host keeps only its hash). So two owners using the same key name two
     * logs: a key is never "taken" by someone else, and EXISTS tells an owner only of its own log. Another
     * identity, another route, or a wrong secret gets NOT_FOUND, exactly as for a log that does not exist.
     *
     * Entries get sequence numbers 1, 2, 3, ... in append order. Appends never wait for the disk: the host keeps
     * a live log's recent entries in memory, delivers them to watchers from there, and writes them to the store
     * behind, in batches. A log has one writer (the handle log_create returned); any handle may watch it and
     * signal its writer. Retention limits (bytes per log, number of logs, age) are the operator's: an entry past
     * a log's byte limit drops the log's oldest entries (first_seq moves), and a watch reading from before
     * first_seq starts at first_seq (compare log_seq with what you expected).
     *
     * When a log's writer goes away without log_end (its instance was dropped, its worker process died, the host
     * was killed and started again), the host ends the log itself: it appends one entry, the JSON object
     *   {"type":"completion","status":"error","data":{"task_result":{"messages":[],"stop_reason":R},"usage":"",
     *    "duration":0},"stop_reason":R,"error":R,"timestamp":T,"v":1,"run_id":KEY,"seq":N,"ts":T}
     * (R the reason, T an ISO 8601 time, KEY the log's key, N its sequence number: the agent protocol's terminal
     * frame), and ends the log with status "error". When the writer's process died (a worker crash, a host killed
     * and started again), entries it appended in its last moments may have reached clients without reaching the
     * store: the host then numbers its terminal entry 2^20 past the last stored one, so it comes after any number
     * a client may hold, and the skipped numbers are a gap every reader sees (entries lost in the crash).
     *
     * Handles belong to the plugin instance: they stay valid across connections and are released by
     * log_release or when the instance is dropped. A handle of another instance (even of the same plugin's next
     * generation) is invalid there: open the log again. */

    /* Create a log on the route of `conn`, owned by its identity (and `secret`, if the identity is anonymous;
     * an anonymous connection must give a secret of 16-256 bytes). Writes the writer handle to *log.
     * EXISTS: this owner already has a log with this key on this route.
     * `signal_data` is passed back with every LOG_SIGNAL for this log. OK, EXISTS, CLOSED, BAD_ARGUMENT. */
    agenthost_status_t (*log_create)(agenthost_conn_t conn, const uint8_t *key, size_t key_len, const uint8_t *secret,
                                     size_t secret_len, void *signal_data, agenthost_log_t *log);

    /* Open an existing log on the route of `conn` for reading and signalling (live or ended, written by any
     * generation or worker). OK, NOT_FOUND, CLOSED, BAD_ARGUMENT, UNAVAILABLE. */
    agenthost_status_t (*log_open)(agenthost_conn_t conn, const uint8_t *key, size_t key_len, const uint8_t *secret,
                                   size_t secret_len, agenthost_log_t *log);

    /* Append one entry (copied before the call returns) through the writer handle; writes its sequence number to
     * *seq (may be NULL). OK, CLOSED (the log has ended: by log_end, or by the host, whose terminal entry says
     * why, e.g. the same run was started on another worker at the same moment: stop the run), BAD_ARGUMENT (not
     * the writer handle, an entry larger than the host's limit, a NULL pointer with a length). Never waits for the
     * store. */
    agenthost_status_t (*log_append)(agenthost_log_t log, const uint8_t *data, size_t len, uint64_t *seq);

    /* End the log with a status (1-31 bytes of UTF-8, e.g. "complete", "cancelled", "error", "timeout") through
     * the writer handle. Watchers get LOG_END once they have every entry. OK, CLOSED (already ended),
     * BAD_ARGUMENT. */
    agenthost_status_t (*log_end)(agenthost_log_t log, const uint8_t *status, size_t status_len);

    /* Fill *info (its struct_size set by the caller). OK, BAD_ARGUMENT, UNAVAILABLE. */
    agenthost_status_t (*log_info)(agenthost_log_t log, agenthost_log_info_v1 *info);

    /* Deliver the log's entries with sequence numbers after `after_seq` to on_event of `conn`, on its event loop,
     * in order, each once: first those already written, then new ones as they are appended, then one LOG_END
     * when the log has ended and every entry was delivered. The host paces delivery by the connection's outbound
     * queue (it stops above the high-water mark and goes on at on_writable), so a watch never floods a socket.
     * Every watch that returned OK gets exactly one LOG_END, with cancelled = 1 if it was cancelled
     * (log_unwatch, log_release, the connection closed: then after on_close, with conn_data NULL).
     * `data` is passed back in every event of the watch, and the event's `id` is the watch id, written to
     * *watch_id.
     * OK, CLOSED, BAD_ARGUMENT. */
    agenthost_status_t (*log_watch)(agenthost_conn_t conn, agenthost_log_t log, uint64_t after_seq, void *data,
                                    uint64_t *watch_id);

    /* Cancel a watch (its LOG_END follows, cancelled = 1). OK, or CLOSED if it already ended. */
    agenthost_status_t (*log_unwatch)(agenthost_conn_t conn, uint64_t watch_id);

    /* Send a message (copied) to the log's writer: on_event(kind LOG_SIGNAL) of the writer's instance, with
     * conn = 0, conn_data = NULL, id = the writer's log handle and data = its signal_data, on a host thread, one
     * at a time per log, in the order they were sent. This is how a client's `stop` or input reaches a run
     * that another generation (or worker process) is writing. At most 64 KiB. OK, NOT_FOUND (the log has
     * ended or has no writer now), BAD_ARGUMENT. */
    agenthost_status_t (*log_signal)(agenthost_log_t log, const uint8_t *data, size_t len);

    /* Release a handle. Its watches are cancelled. Releasing the writer handle of a live log ends the log as a
     * writer that went away does (see above). OK or BAD_ARGUMENT. */
    agenthost_status_t (*log_release)(agenthost_log_t log);

    /* ----- (1.2) CAPABILITIES. Present when abi_minor >= 2 (test with AGENTHOST_HOST_HAS). ---------------------- */

    /* Fill *info (its struct_size set by the caller): the host's version and ABI. OK, or BAD_ARGUMENT (NULL). */
    agenthost_status_t (*host_info)(agenthost_host_info_v1 *info);

    /* 1 if this host's table has the function whose field name is `name` (NUL-terminated, e.g. "pause_reading"),
     * else 0. The same answer as AGENTHOST_HOST_HAS(host, field), for languages without offsetof. */
    int32_t (*has_function)(const char *name);

    /* The lowest level the host writes for this instance: log() below it is dropped, so a plugin can skip
     * building messages nobody will read. Set by the host's log level at start (a restart changes it). */
    agenthost_log_level_t (*log_level)(agenthost_instance_ctx *ctx);

    /* ----- (1.2) INSTANCE EVENTS: posts and timers of the instance, not tied to any connection. ------------------
     *
     * Like post/timer_start/timer_cancel above, but named by the instance context. Delivered to on_event with
     * conn = 0 and conn_data = NULL, on a host event loop, one at a time per instance (never concurrently with
     * another instance event or a LOG_SIGNAL of the same instance; connection callbacks may run meanwhile on
     * other threads). Every call that returned OK is delivered exactly once, fired or cancelled: those still
     * pending when the instance is dropped are delivered with cancelled = 1 before instance_drop. They may be
     * made from instance_create: delivered once it has returned (if it fails, they are dropped undelivered).
     * Once the instance is being dropped they return CLOSED; with 65,536 of the instance's events pending,
     * UNAVAILABLE (nothing was queued). A periodic job re-arms its timer in on_event. */
    agenthost_status_t (*instance_post)(agenthost_instance_ctx *ctx, uint64_t id, void *data);
    /* Writes the timer id (never 0) to *timer_id. OK, CLOSED, or BAD_ARGUMENT (timer_id NULL). */
    agenthost_status_t (*instance_timer_start)(agenthost_instance_ctx *ctx, uint64_t delay_ms, void *data,
                                               uint64_t *timer_id);
    /* OK if cancelled before it fired (delivered once with cancelled = 1); CLOSED if it already fired or was
     * cancelled, or the instance is being dropped. */
    agenthost_status_t (*instance_timer_cancel)(agenthost_instance_ctx *ctx, uint64_t timer_id);

    /* ----- (1.2) INBOUND FLOW CONTROL. ----------------------------------------------------------------------------
     *
     * pause_reading stops reading the connection: called from one of the connection's callbacks, no frame of that
     * connection is processed after it returns (no on_message; pings and the client's close frame wait too) until
     * resume_reading; called from another thread, it acts on the event loop shortly after, in order with the
     * connection's sends, so a message already on its way may still arrive. Frames the host had already read are
     * held (at most one read burst: up to 16 socket reads) and processed in order after resume_reading, once the
     * calling callback has returned: never inside it. The client's further sends wait in the kernel's buffers,
     * then in the client (TCP flow control): use it when the work a connection asks for cannot keep up (Envoy's
     * watermarks, proxy-wasm's PAUSE). While paused, the host's ping and idle timeouts do not run for the
     * connection (a client that vanished is not noticed): the plugin holds it, and should resume or close within
     * a time of its own. A close the host or the plugin starts resumes reading (the client's close reply must be
     * read). Both are idempotent and safe from any thread. OK or CLOSED. */
    agenthost_status_t (*pause_reading)(agenthost_conn_t conn);
    agenthost_status_t (*resume_reading)(agenthost_conn_t conn);

    /* ----- (1.2) METRICS, exported at the host's /metrics (Prometheus text format). ------------------------------
     *
     * Define once (usually in instance_create), then update from any thread: an update is a lock and a map lookup,
     * cheap enough for every message. Each series carries the label plugin="<plugin name>" first, then the
     * plugin's own labels in the order defined. A metric outlives its instance: the next generation (a new
     * version, a reload) that defines the same metric gets the same series, so counters do not restart at a
     * reload. Defining a name that is already defined differently (another kind, help, labels or buckets, by this
     * plugin or another) returns EXISTS and the host logs which. Each metric keeps at most 1000 label sets per
     * plugin; updates naming a new one past that return BAD_ARGUMENT (logged, rate-limited): never put unbounded
     * values (user ids, message text) in labels.
     *
     * Writes the handle to *metric. OK, EXISTS, BAD_ARGUMENT (a name, label, help or bucket rule broken). */
    agenthost_status_t (*metric_define)(agenthost_instance_ctx *ctx, const agenthost_metric_def_v1 *def,
                                        agenthost_metric_t *metric);
    /* `label_values` holds one NUL-terminated UTF-8 value (at most 128 bytes) per label defined, in order (NULL
     * when there are none). A counter adds `value` (finite, >= 0); a gauge adds `value` (finite). OK or
     * BAD_ARGUMENT (unknown handle, wrong kind, label count, value). */
    agenthost_status_t (*metric_add)(agenthost_metric_t metric, const char *const *label_values, size_t label_count,
                                     double value);
    /* Gauges: set to `value` (finite). OK or BAD_ARGUMENT. */
    agenthost_status_t (*metric_set)(agenthost_metric_t metric, const char *const *label_values, size_t label_count,
                                     double value);
    /* Histograms: record one observation (finite). OK or BAD_ARGUMENT. */
    agenthost_status_t (*metric_observe)(agenthost_metric_t metric, const char *const *label_values,
                                         size_t label_count, double value);
} agenthost_host_api_v1;

/* Whether `host` (an agenthost_host_api_v1 *) has the function `field`: its struct reaches past the field, and the
 * host filled it in. Use it before calling any function added after 1.0, e.g. AGENTHOST_HOST_HAS(host, pause_reading). */
#define AGENTHOST_HOST_HAS(host, field)                                                                              \
    ((host)->struct_size >= offsetof(agenthost_host_api_v1, field) + sizeof((host)->field) && (host)->field != NULL)

/* ---------------------------------------------------------------------------------------------------------------
 * The plugin descriptor, returned by the entry function. It and everything it points to (strings, routes) must
 * stay valid and unchanged for the life of the process: the host never unloads a plugin.
 * ------------------------------------------------------------------------------------------------------------- */
typedef struct agenthost_plugin_v1 {
    uint32_t struct_size; /* sizeof(agenthost_plugin_v1) as the plugin was compiled */
    uint32_t abi_major;   /* must be AGENTHOST_ABI_MAJOR (1) */
    uint32_t abi_minor;   /* AGENTHOST_ABI_MINOR the plugin was compiled against */

    const char *name;     /* NUL-terminated, [a-z0-9_-]+, unique among loaded plugins */
    const char *version;  /* NUL-terminated, free-form, e.g. "1.2.0" */
    const char *const *routes; /* `route_count` NUL-terminated paths, each starting with '/' */
    size_t route_count;

    /* Create the plugin instance. `config` (borrowed) holds the plugin's configuration from the host's config
     * file, as JSON bytes ("{}" when none). Return the instance pointer (passed back to every callback), or NULL
     * to refuse loading: then write a NUL-terminated reason into `error` (capacity `error_capacity`).
     * Called once, on a host thread that is not an event loop. */
    void *(*instance_create)(const agenthost_host_api_v1 *host, agenthost_instance_ctx *ctx, const uint8_t *config,
                             size_t config_len, char *error, size_t error_capacity);

    /* Destroy the instance. Called once, after the last on_close of its connections, on a host thread. */
    void (*instance_drop)(void *instance);

    /* A client completed the WebSocket handshake on one of the routes. Store per-connection state in
     * *conn_data (initially NULL); it is passed to every later callback for this connection.
     * Return AGENTHOST_OK to accept, anything else to refuse (the host closes with 1011 and calls no on_close). */
    agenthost_status_t (*on_open)(void *instance, agenthost_conn_t conn, const agenthost_open_info_v1 *info,
                                  void **conn_data);

    /* A complete message (fragments already joined; text already validated as UTF-8). `data` is borrowed. */
    void (*on_message)(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_message_kind_t kind,
                       const uint8_t *data, size_t len);

    /* A deferred event: a post() or a timer. See agenthost_event_v1. */
    void (*on_event)(void *instance, void *conn_data, agenthost_conn_t conn, const agenthost_event_v1 *event);

    /* The outbound queue fell back below its low-water mark after a send returned BACKPRESSURE. May be NULL. */
    void (*on_writable)(void *instance, void *conn_data, agenthost_conn_t conn);

    /* Something went wrong on the connection; on_close follows. `message` is borrowed, UTF-8. May be NULL. */
    void (*on_error)(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_error_kind_t kind,
                     const uint8_t *message, size_t message_len);

    /* The connection is closed. `code` is the close code received from or sent to the client (1005 if none was
     * given, 1006 if the transport closed without a handshake). Free conn_data here: after on_close the handle
     * is dead and no further callback names this connection (except cancelled events, with conn_data NULL). */
    void (*on_close)(void *instance, void *conn_data, agenthost_conn_t conn, uint16_t code, const uint8_t *reason,
                     size_t reason_len);

    /* ----- (1.2) Optional callbacks: a host reads them only when struct_size covers them; NULL is allowed. ----- */

    /* The instance's generation has started draining: a new version (or a new config) of this plugin serves new
     * connections from now on, and this instance's open connections get until the drain deadline to finish (then
     * close 1012), its live runs until the run drain deadline. Called once, before instance_drop, on a host thread
     * that is not an event loop, also when the host shuts down. Two generations of one plugin run side by side
     * during a drain: state they share outside the instance (files, ports, global variables of the library)
     * must allow it. Use it to tell clients to reconnect, stop taking new work, or flush. */
    void (*on_drain)(void *instance);

    /* Decide on a WebSocket upgrade before the host answers it (see agenthost_upgrade_request_v1): return
     * AGENTHOST_OK to accept (optionally choosing the subprotocol in `response`), anything else to refuse with
     * response->status and body (the client gets that HTTP answer, no connection opens, no on_open). Called on the
     * connection's event loop after the host's checks, authentication and route policy passed: it must not block.
     * Use it for what only the plugin knows: a query parameter it requires, a header, the identity's right to this
     * resource, the subprotocol it speaks. */
    agenthost_status_t (*on_upgrade)(void *instance, const agenthost_upgrade_request_v1 *request,
                                     agenthost_upgrade_response_v1 *response);
} agenthost_plugin_v1;

/* The smallest descriptor a version-1 host accepts: everything up to and including on_close. */
#define AGENTHOST_PLUGIN_V1_MIN_SIZE (offsetof(agenthost_plugin_v1, on_close) + sizeof(void *))

/* The entry point. Exported by every plugin as `agenthost_plugin_entry_v1`. `host_abi_minor` is the host's minor
 * version. Return a pointer to a static descriptor, or NULL to refuse this host. Called once per load, on a host
 * thread, before instance_create. */
typedef const agenthost_plugin_v1 *(*agenthost_plugin_entry_v1_fn)(uint32_t host_abi_minor);

#if defined(__GNUC__) || defined(__clang__)
#define AGENTHOST_EXPORT __attribute__((visibility("default")))
#else
#define AGENTHOST_EXPORT
#endif

#ifdef __cplusplus
}
#endif

#endif /* AGENTHOST_PLUGIN_H */
