/*
 * c-agent: an agent route in plain C with the helpers of agenthost_agent.h.
 *
 * An echo agent: for each `start` it streams the task back as its reply, a word at a time (one timer tick per token, `token_delay_ms`
 * apart, default 0), shaped exactly like an AutoGen AssistantAgent with model_client_stream=True: the task as a
 * TextMessage, ModelClientStreamingChunkEvents, the full TextMessage, then `result`. `stop` cancels the run
 * (completion/cancelled), `ping` answers `pong`; malformed frames get error frames with the protocol's codes.
 *
 * Runs live on the host's run log (ABI 1.1): every frame is appended to the run's log with its seq, and a socket
 * streams a run by watching its log, the starter's socket too. So `resume {run_id, last_seq}` works on any socket,
 * plugin generation or worker, and after a host restart. One run per socket is driven at a time (its tokens are
 * timers of the starter's socket); when that socket closes, the rest of the reply is appended at once and the run
 * completes, so a client that resumes gets all of it. A `stop` for a run written by another socket or generation
 * goes to its writer with log_signal.
 */
#include "agenthost_agent.h"
#include "agenthost_plugin.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Which socket drives the run a log handle writes: how a signal (on a host thread) finds its run's loop. */
typedef struct writer_entry {
    agenthost_log_t log;
    agenthost_conn_t conn;
    struct writer_entry *next;
} writer_entry;

typedef struct plugin {
    const agenthost_host_api_v1 *host;
    agenthost_instance_ctx *ctx;
    uint64_t token_delay_ms;
    pthread_mutex_t writers_lock;
    writer_entry *writers;
} plugin;

typedef struct run {
    char id[AGH_RUN_ID_MAX + 1];
    char token[33];         /* the resume token of an anonymous starter's run, "" otherwise */
    uint64_t seq;
    agenthost_log_t log;    /* the writer handle */
    struct timespec started;
    char message_id[37];    /* the id of the reply's TextMessage: every chunk names it */
    char *reply;            /* the task, echoed */
    size_t offset;          /* how much of the reply was streamed */
    agh_buf messages;       /* the TaskResult's messages so far, comma-separated JSON objects */
    uint64_t timer;         /* pending token timer, 0 if none */
} run;

typedef struct conn_state {
    run *live;
    int anonymous;
    /* The run this socket streams: its own handle on the run's log and the watch. */
    agenthost_log_t reader;
    uint64_t watch_id;
    char streaming[AGH_RUN_ID_MAX + 1];
    agh_buf frame;
    agh_buf event;
} conn_state;

static void send_frame(plugin *p, agenthost_conn_t conn, agh_buf *frame) {
    if (frame->failed) return;
    p->host->send(conn, AGENTHOST_MESSAGE_TEXT, (const uint8_t *)frame->data, frame->len);
}

static void writers_add(plugin *p, agenthost_log_t log, agenthost_conn_t conn) {
    writer_entry *entry = (writer_entry *)malloc(sizeof *entry);
    if (!entry) return; /* no signals for this run: stop still works from its own socket */
    entry->log = log;
    entry->conn = conn;
    pthread_mutex_lock(&p->writers_lock);
    entry->next = p->writers;
    p->writers = entry;
    pthread_mutex_unlock(&p->writers_lock);
}

static void writers_remove(plugin *p, agenthost_log_t log) {
    pthread_mutex_lock(&p->writers_lock);
    for (writer_entry **at = &p->writers; *at; at = &(*at)->next) {
        if ((*at)->log == log) {
            writer_entry *gone = *at;
            *at = gone->next;
            free(gone);
            break;
        }
    }
    pthread_mutex_unlock(&p->writers_lock);
}

static agenthost_conn_t writers_find(plugin *p, agenthost_log_t log) {
    agenthost_conn_t conn = 0;
    pthread_mutex_lock(&p->writers_lock);
    for (writer_entry *entry = p->writers; entry; entry = entry->next) {
        if (entry->log == log) { conn = entry->conn; break; }
    }
    pthread_mutex_unlock(&p->writers_lock);
    return conn;
}

static void free_run(run *r) {
    if (!r) return;
    free(r->reply);
    agh_buf_free(&r->messages);
    free(r);
}

/* Appends one frame (built in s->frame with seq r->seq) to the run's log: the socket gets it through its watch. */
static void append_frame(plugin *p, conn_state *s, run *r) {
    agenthost_status_t status = agh_log_append_frame(p->host, r->log, &s->frame, r->seq);
    if (status != AGENTHOST_OK) {
        char line[96];
        int n = snprintf(line, sizeof line, "run %.40s: the run log refused frame %llu (status %d)", r->id,
                         (unsigned long long)r->seq, (int)status);
        p->host->log(p->ctx, 0, AGENTHOST_LOG_WARNING, (const uint8_t *)line, (size_t)n);
    }
}

/* Appends one event of the run and, unless it is a chunk, keeps it for the TaskResult. */
static void emit(plugin *p, conn_state *s, int is_chunk) {
    run *r = s->live;
    agh_buf_reset(&s->frame);
    r->seq++;
    agh_frame_event_token(&s->frame, is_chunk, s->event.data, s->event.len, r->id, r->seq,
                          r->seq == 1 && r->token[0] ? r->token : NULL);
    append_frame(p, s, r);
    if (!is_chunk) {
        if (r->messages.len) agh_buf_put(&r->messages, ",", 1);
        agh_buf_put(&r->messages, s->event.data, s->event.len);
    }
}

static void finish(plugin *p, agenthost_conn_t conn, conn_state *s, const char *status, const char *reason) {
    run *r = s->live;
    agh_buf_reset(&s->frame);
    if (!status) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double duration = (double)(now.tv_sec - r->started.tv_sec) + (double)(now.tv_nsec - r->started.tv_nsec) / 1e9;
        agh_buf task_result;
        agh_buf_init(&task_result);
        agh_buf_puts(&task_result, "{\"messages\":[");
        agh_buf_put(&task_result, r->messages.data ? r->messages.data : "", r->messages.len);
        agh_buf_puts(&task_result, "],\"stop_reason\":null}");
        agh_frame_result(&s->frame, task_result.data, task_result.len, duration, r->id, ++r->seq);
        agh_buf_free(&task_result);
    } else {
        agh_frame_completion(&s->frame, status, reason, r->id, ++r->seq);
    }
    append_frame(p, s, r);
    const char *end_status = status ? status : "complete";
    p->host->log_end(r->log, (const uint8_t *)end_status, strlen(end_status));
    writers_remove(p, r->log);
    p->host->log_release(r->log);
    if (r->timer && conn) p->host->timer_cancel(conn, r->timer); /* handed back cancelled: on_event ignores it */
    s->live = NULL;
    free_run(r);
}

/* Streams the next token (a word and its trailing space), or ends the reply. Returns 1 once the run ended. */
static int next_token(plugin *p, conn_state *s) {
    run *r = s->live;
    size_t length = strlen(r->reply);
    if (r->offset < length) {
        size_t end = r->offset;
        while (end < length && r->reply[end] != ' ') end++;
        while (end < length && r->reply[end] == ' ') end++;
        agh_buf_reset(&s->event);
        agh_event_chunk(&s->event, "assistant", r->reply + r->offset, end - r->offset, r->message_id);
        emit(p, s, 1);
        r->offset = end;
        return 0;
    }
    agh_buf_reset(&s->event);
    agh_event_text_message(&s->event, r->message_id, "assistant", r->reply, length);
    emit(p, s, 0);
    finish(p, 0, s, NULL, NULL);
    return 1;
}

static void tick(plugin *p, agenthost_conn_t conn, conn_state *s) {
    run *r = s->live;
    r->timer = 0;
    if (next_token(p, s)) return;
    if (p->host->timer_start(conn, p->token_delay_ms, r, &r->timer) != AGENTHOST_OK) r->timer = 0;
}

static void refuse(plugin *p, agenthost_conn_t conn, conn_state *s, const char *code, const char *message,
                   const char *run_id) {
    agh_buf_reset(&s->frame);
    agh_frame_error(&s->frame, code, message, run_id && run_id[0] ? run_id : NULL);
    send_frame(p, conn, &s->frame);
}

/* Stops streaming the run this socket follows (its watch is cancelled with the handle). */
static void unfollow(plugin *p, conn_state *s) {
    if (!s->reader) return;
    p->host->log_release(s->reader);
    s->reader = 0;
    s->watch_id = 0;
    s->streaming[0] = 0;
}

/* Streams `run_id` to this socket from the frame after `last_seq`; sends the error frame if it cannot. */
static int follow(plugin *p, agenthost_conn_t conn, conn_state *s, const char *run_id, const char *secret,
                  uint64_t last_seq) {
    unfollow(p, s);
    uint64_t first_seq = 0;
    const char *code = agh_follow_run(p->host, conn, run_id, secret && secret[0] ? secret : NULL, last_seq, NULL,
                                      &s->reader, &s->watch_id, &first_seq);
    if (!code) {
        snprintf(s->streaming, sizeof s->streaming, "%s", run_id);
        return 1;
    }
    s->reader = 0;
    char message[160];
    if (!strcmp(code, "resume_gap"))
        snprintf(message, sizeof message, "frames after %llu are no longer kept; the oldest kept is %llu",
                 (unsigned long long)last_seq, (unsigned long long)first_seq);
    else if (!strcmp(code, "unavailable"))
        snprintf(message, sizeof message, "the run log cannot be read now; try again");
    else if (!strcmp(code, "invalid_frame"))
        snprintf(message, sizeof message, "%s", AGH_RUN_ID_INVALID_MESSAGE);
    else
        snprintf(message, sizeof message, "no run %.128s", run_id);
    refuse(p, conn, s, code, message, strcmp(code, "invalid_frame") ? run_id : NULL);
    return 0;
}

static void start(plugin *p, agenthost_conn_t conn, conn_state *s, agh_client_frame *frame) {
    if (!frame->task_is_text) {
        refuse(p, conn, s, "invalid_frame", "Invalid start message format: this route takes a text task", frame->run_id);
        return;
    }
    if (s->live) {
        refuse(p, conn, s, "run_exists", "this socket already has a live run", frame->run_id);
        return;
    }
    run *r = (run *)calloc(1, sizeof *r);
    if (!r) return;
    if (frame->run_id[0]) snprintf(r->id, sizeof r->id, "%s", frame->run_id); /* valid: at most 128 bytes */
    else agh_new_id(r->id);
    if (s->anonymous && agh_new_token(r->token) != 0) { free(r); return; }
    agenthost_status_t created = p->host->log_create(conn, (const uint8_t *)r->id, strlen(r->id),
                                                     (const uint8_t *)r->token, strlen(r->token), NULL, &r->log);
    if (created != AGENTHOST_OK) {
        refuse(p, conn, s, created == AGENTHOST_EXISTS ? "run_exists" : "unavailable",
               created == AGENTHOST_EXISTS ? "a run with this run_id exists on this route" : "the run could not be started",
               r->id);
        free(r);
        return;
    }
    writers_add(p, r->log, conn);
    clock_gettime(CLOCK_MONOTONIC, &r->started);
    agh_new_id(r->message_id);
    agh_buf_init(&r->messages);
    size_t task_len = strlen(frame->task);
    r->reply = (char *)malloc(task_len + 1);
    s->live = r;
    if (!r->reply) { finish(p, conn, s, "error", "out of memory"); return; }
    memcpy(r->reply, frame->task, task_len + 1);
    follow(p, conn, s, r->id, r->token, 0);

    agh_buf_reset(&s->event);
    agh_event_text_message(&s->event, NULL, "user", frame->task, task_len);
    emit(p, s, 0);
    if (p->host->timer_start(conn, p->token_delay_ms, r, &r->timer) != AGENTHOST_OK) r->timer = 0;
}

/* `stop` for the run this socket drives, or (by signal to its writer) for one it streams or names. */
static void stop(plugin *p, agenthost_conn_t conn, conn_state *s, agh_client_frame *frame) {
    const char *reason = frame->reason[0] ? frame->reason : "Cancelled by user";
    if (s->live && (!frame->run_id[0] || !strcmp(frame->run_id, s->live->id))) {
        finish(p, conn, s, "cancelled", reason);
        return;
    }
    if (s->reader && (!frame->run_id[0] || !strcmp(frame->run_id, s->streaming))) {
        agh_signal_stop(p->host, s->reader, frame->reason); /* NOT_FOUND: it ended already; nothing to stop */
        return;
    }
    agenthost_log_t log = 0;
    if (frame->run_id[0] && p->host->log_open(conn, (const uint8_t *)frame->run_id, strlen(frame->run_id),
                                              (const uint8_t *)frame->resume_token, strlen(frame->resume_token),
                                              &log) == AGENTHOST_OK) {
        agh_signal_stop(p->host, log, frame->reason);
        p->host->log_release(log);
        return;
    }
    refuse(p, conn, s, "unknown_run", "no run on this socket", frame->run_id);
}

/* ---- ABI callbacks ---------------------------------------------------------------------------------------- */

static void *instance_create(const agenthost_host_api_v1 *host, agenthost_instance_ctx *ctx, const uint8_t *config,
                             size_t config_len, char *error, size_t error_capacity) {
    if (!agh_host_has_run_log(host)) {
        snprintf(error, error_capacity, "c-agent keeps its runs in the host's run log (plugin ABI 1.1); this host "
                 "offers ABI 1.%u: run it with an agenthost that has the run log", (unsigned)host->abi_minor);
        return NULL;
    }
    plugin *p = (plugin *)calloc(1, sizeof *p);
    if (!p) return NULL;
    p->host = host;
    p->ctx = ctx;
    pthread_mutex_init(&p->writers_lock, NULL);
    /* {"token_delay_ms": N}: a key scan is enough for one number; anything else there refuses the plugin. */
    const char *key = "\"token_delay_ms\"";
    size_t key_len = strlen(key);
    for (size_t i = 0; config && i + key_len < config_len; i++) {
        if (memcmp(config + i, key, key_len) != 0) continue;
        size_t at = i + key_len;
        while (at < config_len && (config[at] == ' ' || config[at] == ':')) at++;
        unsigned long long delay = 0;
        size_t digits = 0;
        while (at < config_len && config[at] >= '0' && config[at] <= '9' && digits < 6) {
            delay = delay * 10 + (unsigned long long)(config[at++] - '0');
            digits++;
        }
        if (digits == 0 || delay > 60000 || (at < config_len && config[at] >= '0' && config[at] <= '9')) {
            snprintf(error, error_capacity, "token_delay_ms must be a whole number of milliseconds from 0 to 60000");
            free(p);
            return NULL;
        }
        p->token_delay_ms = delay;
        break;
    }
    return p;
}

static void instance_drop(void *instance) {
    plugin *p = (plugin *)instance;
    while (p->writers) {
        writer_entry *next = p->writers->next;
        free(p->writers);
        p->writers = next;
    }
    pthread_mutex_destroy(&p->writers_lock);
    free(p);
}

static agenthost_status_t on_open(void *instance, agenthost_conn_t conn, const agenthost_open_info_v1 *info,
                                  void **conn_data) {
    plugin *p = (plugin *)instance;
    conn_state *s = (conn_state *)calloc(1, sizeof *s);
    if (!s) return AGENTHOST_ERROR;
    /* Anonymous starters get a resume token: the secret of their run's log. */
    s->anonymous = info->identity_subject.len == 0;
    agh_buf_init(&s->frame);
    agh_buf_init(&s->event);
    agh_frame_simple(&s->frame, "system", "connected");
    send_frame(p, conn, &s->frame);
    *conn_data = s;
    return AGENTHOST_OK;
}

static void on_message(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_message_kind_t kind,
                       const uint8_t *data, size_t len) {
    plugin *p = (plugin *)instance;
    conn_state *s = (conn_state *)conn_data;
    if (kind != AGENTHOST_MESSAGE_TEXT) {
        p->host->close(conn, 1003, (const uint8_t *)"agent frames are JSON text", 26);
        return;
    }
    agh_client_frame *frame = (agh_client_frame *)malloc(sizeof *frame); /* ~8 KiB: not on the loop's stack */
    if (!frame) return;
    agh_frame_type type = agh_parse_client_frame(data, len, frame);
    if (type != AGH_FRAME_INVALID_JSON && frame->type_name[0] && frame->run_id_invalid) {
        /* Refused, never truncated: a cut id would name (start, resume, stop) another run. */
        refuse(p, conn, s, "invalid_frame", AGH_RUN_ID_INVALID_MESSAGE, NULL);
        free(frame);
        return;
    }
    switch (type) {
    case AGH_FRAME_START: start(p, conn, s, frame); break;
    case AGH_FRAME_STOP: stop(p, conn, s, frame); break;
    case AGH_FRAME_PING:
        agh_buf_reset(&s->frame);
        agh_frame_simple(&s->frame, "pong", NULL);
        send_frame(p, conn, &s->frame);
        break;
    case AGH_FRAME_INPUT_RESPONSE:
        refuse(p, conn, s, "not_waiting_for_input", "no input request is waiting for this response", frame->run_id);
        break;
    case AGH_FRAME_RESUME: {
        if (!frame->run_id[0]) {
            refuse(p, conn, s, "invalid_frame", "resume needs a \"run_id\"", NULL);
            break;
        }
        /* An anonymous client names its own socket's run without the token. */
        const char *token = frame->resume_token[0] ? frame->resume_token
                            : (s->live && !strcmp(s->live->id, frame->run_id)) ? s->live->token : NULL;
        follow(p, conn, s, frame->run_id, token, frame->last_seq > 0 ? (uint64_t)frame->last_seq : 0);
        break;
    }
    case AGH_FRAME_UNKNOWN:
        refuse(p, conn, s, frame->type_name[0] ? "unknown_type" : "invalid_frame",
               frame->type_name[0] ? "Unknown message type" : "Invalid message format: missing \"type\"", frame->run_id);
        break;
    case AGH_FRAME_INVALID_JSON:
        refuse(p, conn, s, "invalid_json", "Invalid message format: expected a JSON object", NULL);
        break;
    }
    free(frame);
}

/* A `stop` signal for a run this instance writes, handed to the loop of the socket that drives it. */
static void on_signal(plugin *p, const agenthost_event_v1 *event) {
    agh_client_frame *frame = (agh_client_frame *)malloc(sizeof *frame);
    if (!frame) return;
    int is_stop = agh_parse_client_frame(event->log_bytes.ptr, event->log_bytes.len, frame) == AGH_FRAME_STOP;
    char *reason = is_stop ? strdup(frame->reason[0] ? frame->reason : "Cancelled by user") : NULL;
    free(frame);
    if (!reason) return;
    agenthost_conn_t conn = writers_find(p, event->id);
    if (!conn || p->host->post(conn, event->id, reason) != AGENTHOST_OK) free(reason);
}

static void on_event(void *instance, void *conn_data, agenthost_conn_t conn, const agenthost_event_v1 *event) {
    plugin *p = (plugin *)instance;
    conn_state *s = (conn_state *)conn_data;
    int has_log_fields = event->struct_size >= offsetof(agenthost_event_v1, log_bytes) + sizeof(agenthost_bytes);
    switch (event->kind) {
    case AGENTHOST_EVENT_TIMER:
        /* A token timer of the live run; a cancelled one (stop, close) carries nothing to free. */
        if (event->cancelled || !s || !s->live || event->data != s->live || event->id != s->live->timer) return;
        tick(p, conn, s);
        return;
    case AGENTHOST_EVENT_POSTED:
        /* A stop that came as a signal: `id` names the run's log, `data` is the reason (ours to free). */
        if (!event->cancelled && s && s->live && s->live->log == event->id) finish(p, conn, s, "cancelled", event->data);
        free(event->data);
        return;
    case AGENTHOST_EVENT_LOG_ENTRY:
        if (has_log_fields && s && s->reader && event->id == s->watch_id) agh_forward_entry(p->host, conn, event);
        return;
    case AGENTHOST_EVENT_LOG_END:
        /* The run ended and every frame was sent (or the watch was cancelled): the stream is over. Not cancelled
         * and no status: the host's retention deleted the run meanwhile; the client must hear it is gone. */
        if (s && s->reader && event->id == s->watch_id) {
            if (!event->cancelled && has_log_fields && event->log_bytes.len == 0)
                refuse(p, conn, s, "unknown_run", "the run no longer exists (the server's retention deleted it)", NULL);
            unfollow(p, s);
        }
        return;
    case AGENTHOST_EVENT_LOG_SIGNAL:
        if (has_log_fields) on_signal(p, event);
        return;
    default:
        return;
    }
}

static void on_close(void *instance, void *conn_data, agenthost_conn_t conn, uint16_t code, const uint8_t *reason,
                     size_t reason_len) {
    (void)conn; (void)code; (void)reason; (void)reason_len;
    plugin *p = (plugin *)instance;
    conn_state *s = (conn_state *)conn_data;
    unfollow(p, s);
    /* The run outlives its socket in the log: the rest of the reply is appended now, so a resume gets it all. */
    while (s->live && !next_token(p, s)) {}
    agh_buf_free(&s->frame);
    agh_buf_free(&s->event);
    free(s);
}

static const char *const routes[] = {"/agents/c"};

static const agenthost_plugin_v1 descriptor = {
    .struct_size = sizeof(agenthost_plugin_v1),
    .abi_major = AGENTHOST_ABI_MAJOR,
    .abi_minor = AGENTHOST_ABI_MINOR,
    .name = "c-agent",
    .version = "1.0.0",
    .routes = routes,
    .route_count = 1,
    .instance_create = instance_create,
    .instance_drop = instance_drop,
    .on_open = on_open,
    .on_message = on_message,
    .on_event = on_event,
    .on_writable = NULL,
    .on_error = NULL,
    .on_close = on_close,
};

AGENTHOST_EXPORT const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return &descriptor;
}
