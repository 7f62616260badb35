/*
 * c-agent: an agent route in plain C with the helpers of agenthost_agent.h.
 *
 * An echo agent: for each `start` it streams the task back as its reply, a word at a time (one timer tick per token, `token_delay_ms`
 * apart, default 0), shaped exactly like an AutoGen AssistantAgent with model_client_stream=True: the task as a
 * TextMessage, ModelClientStreamingChunkEvents, the full TextMessage, then `result`. `stop` cancels the run
 * (completion/cancelled), `ping` answers `pong`; malformed frames get error frames with the protocol's codes.
 *
 * One run per socket at a time, and runs end with their socket: the Swift agent SDK adds resume, several runs per
 * socket and input requests on top of the same frames (plugin-sdk/agent-protocol.md).
 */
#include "agenthost_agent.h"
#include "agenthost_plugin.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct plugin {
    const agenthost_host_api_v1 *host;
    agenthost_instance_ctx *ctx;
    uint64_t token_delay_ms;
} plugin;

typedef struct run {
    char id[129];
    uint64_t seq;
    struct timespec started;
    char message_id[37];    /* the id of the reply's TextMessage: every chunk names it */
    char *reply;            /* the task, echoed */
    size_t offset;          /* how much of the reply was streamed */
    agh_buf messages;       /* the TaskResult's messages so far, comma-separated JSON objects */
    uint64_t timer;         /* pending token timer, 0 if none */
} run;

typedef struct conn_state {
    run *live;
    agh_buf frame;
    agh_buf event;
} conn_state;

static void send_frame(plugin *p, agenthost_conn_t conn, agh_buf *frame) {
    if (frame->failed) return;
    p->host->send(conn, AGENTHOST_MESSAGE_TEXT, (const uint8_t *)frame->data, frame->len);
}

static void free_run(run *r) {
    if (!r) return;
    free(r->reply);
    agh_buf_free(&r->messages);
    free(r);
}

/* Sends one event of the run and, unless it is a chunk, keeps it for the TaskResult. */
static void emit(plugin *p, agenthost_conn_t conn, conn_state *s, int is_chunk) {
    run *r = s->live;
    agh_buf_reset(&s->frame);
    agh_frame_event(&s->frame, is_chunk, s->event.data, s->event.len, r->id, ++r->seq);
    send_frame(p, conn, &s->frame);
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
    send_frame(p, conn, &s->frame);
    if (r->timer) p->host->timer_cancel(conn, r->timer); /* handed back cancelled: on_event ignores it */
    s->live = NULL;
    free_run(r);
}

/* Streams the next token (a word and its trailing space), or ends the reply. */
static void next_token(plugin *p, agenthost_conn_t conn, conn_state *s) {
    run *r = s->live;
    r->timer = 0;
    size_t length = strlen(r->reply);
    if (r->offset < length) {
        size_t end = r->offset;
        while (end < length && r->reply[end] != ' ') end++;
        while (end < length && r->reply[end] == ' ') end++;
        agh_buf_reset(&s->event);
        agh_event_chunk(&s->event, "assistant", r->reply + r->offset, end - r->offset, r->message_id);
        emit(p, conn, s, 1);
        r->offset = end;
        if (p->host->timer_start(conn, p->token_delay_ms, r, &r->timer) != AGENTHOST_OK) r->timer = 0;
        return;
    }
    agh_buf_reset(&s->event);
    agh_event_text_message(&s->event, r->message_id, "assistant", r->reply, length);
    emit(p, conn, s, 0);
    finish(p, conn, s, NULL, NULL);
}

static void refuse(plugin *p, agenthost_conn_t conn, conn_state *s, const char *code, const char *message,
                   const char *run_id) {
    agh_buf_reset(&s->frame);
    agh_frame_error(&s->frame, code, message, run_id && run_id[0] ? run_id : NULL);
    send_frame(p, conn, &s->frame);
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
    if (frame->run_id[0]) memcpy(r->id, frame->run_id, sizeof r->id);
    else agh_new_id(r->id);
    clock_gettime(CLOCK_MONOTONIC, &r->started);
    agh_new_id(r->message_id);
    agh_buf_init(&r->messages);
    size_t task_len = strlen(frame->task);
    r->reply = (char *)malloc(task_len + 1);
    if (!r->reply) { free(r); return; }
    memcpy(r->reply, frame->task, task_len + 1);
    s->live = r;

    agh_buf_reset(&s->event);
    agh_event_text_message(&s->event, NULL, "user", frame->task, task_len);
    emit(p, conn, s, 0);
    if (p->host->timer_start(conn, p->token_delay_ms, r, &r->timer) != AGENTHOST_OK) r->timer = 0;
}

/* ---- ABI callbacks ---------------------------------------------------------------------------------------- */

static void *instance_create(const agenthost_host_api_v1 *host, agenthost_instance_ctx *ctx, const uint8_t *config,
                             size_t config_len, char *error, size_t error_capacity) {
    plugin *p = (plugin *)calloc(1, sizeof *p);
    if (!p) return NULL;
    p->host = host;
    p->ctx = ctx;
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

static void instance_drop(void *instance) { free(instance); }

static agenthost_status_t on_open(void *instance, agenthost_conn_t conn, const agenthost_open_info_v1 *info,
                                  void **conn_data) {
    (void)info;
    plugin *p = (plugin *)instance;
    conn_state *s = (conn_state *)calloc(1, sizeof *s);
    if (!s) return AGENTHOST_ERROR;
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
    switch (agh_parse_client_frame(data, len, frame)) {
    case AGH_FRAME_START: start(p, conn, s, frame); break;
    case AGH_FRAME_STOP:
        if (s->live) finish(p, conn, s, "cancelled", frame->reason[0] ? frame->reason : "Cancelled by user");
        else refuse(p, conn, s, "unknown_run", "no run on this socket", frame->run_id);
        break;
    case AGH_FRAME_PING:
        agh_buf_reset(&s->frame);
        agh_frame_simple(&s->frame, "pong", NULL);
        send_frame(p, conn, &s->frame);
        break;
    case AGH_FRAME_INPUT_RESPONSE:
        refuse(p, conn, s, "not_waiting_for_input", "no input request is waiting for this response", frame->run_id);
        break;
    case AGH_FRAME_RESUME:
        refuse(p, conn, s, "unknown_run", "this route does not keep runs past their socket", frame->run_id);
        break;
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

static void on_event(void *instance, void *conn_data, agenthost_conn_t conn, const agenthost_event_v1 *event) {
    conn_state *s = (conn_state *)conn_data;
    /* A token timer of the live run; a cancelled one (stop, close) carries nothing to free. */
    if (event->cancelled || !s || !s->live || event->data != s->live || event->id != s->live->timer) return;
    next_token((plugin *)instance, conn, s);
}

static void on_close(void *instance, void *conn_data, agenthost_conn_t conn, uint16_t code, const uint8_t *reason,
                     size_t reason_len) {
    (void)instance; (void)conn; (void)code; (void)reason; (void)reason_len;
    conn_state *s = (conn_state *)conn_data;
    free_run(s->live);
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
