/* The run log (ABI 1.1) driven by a client: one text command per message, one text reply per command or event.
 *
 *   create KEY [SECRET]   log_create on this connection        -> "created" | "status N"
 *   open KEY [SECRET]     log_open                             -> "opened" | "status N"
 *   append TEXT           log_append through the writer handle -> "appended SEQ" | "status N"
 *   burst N               N appends of {"n":I}                 -> "burst done LAST_SEQ"
 *   fill N SIZE           N appends of SIZE bytes ('x')        -> "fill done LAST_SEQ"
 *   end STATUS            log_end                              -> "ended" | "status N"
 *   watch AFTER           log_watch of the last handle         -> "watching" | "status N"
 *   signal TEXT           log_signal of the last handle        -> "signalled" | "status N"
 *   info                  log_info                             -> "info ENDED FIRST LAST STATUS"
 *   release               log_release of the last handle       -> "released" | "status N"
 *
 * Watch events: "entry SEQ BYTES" and "end SEQ STATUS cancelled=C". A signal reaches the writer's connection
 * (signal_data is its handle) as "signal BYTES". */
#include "agenthost_plugin.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef RUNLOG_VERSION
#define RUNLOG_VERSION "1"
#endif

static const agenthost_host_api_v1 *host;

typedef struct {
    agenthost_log_t log;
} conn_state;

static void *create(const agenthost_host_api_v1 *api, agenthost_instance_ctx *ctx, const uint8_t *config,
                    size_t config_len, char *error, size_t error_capacity) {
    (void)ctx; (void)config; (void)config_len;
    if (api->abi_minor < 1 || api->struct_size < offsetof(agenthost_host_api_v1, log_release) + sizeof(void *)) {
        snprintf(error, error_capacity, "the host has no run log");
        return NULL;
    }
    host = api;
    return (void *)&host;
}

static void drop(void *instance) { (void)instance; }

static agenthost_status_t on_open(void *instance, agenthost_conn_t conn, const agenthost_open_info_v1 *info,
                                  void **conn_data) {
    (void)instance; (void)conn; (void)info;
    *conn_data = calloc(1, sizeof(conn_state));
    return *conn_data ? AGENTHOST_OK : AGENTHOST_ERROR;
}

static void reply(agenthost_conn_t conn, const char *text, size_t len) {
    host->send(conn, AGENTHOST_MESSAGE_TEXT, (const uint8_t *)text, len);
}

static void replyf(agenthost_conn_t conn, const char *format, long long a) {
    char text[128];
    int n = snprintf(text, sizeof text, format, a);
    reply(conn, text, (size_t)n);
}

/* Splits "KEY [SECRET]". */
static void key_and_secret(const char *args, size_t len, size_t *key_len, const char **secret, size_t *secret_len) {
    const char *space = memchr(args, ' ', len);
    *key_len = space ? (size_t)(space - args) : len;
    *secret = space ? space + 1 : NULL;
    *secret_len = space ? len - *key_len - 1 : 0;
}

#define IS(word) (len >= sizeof(word) - 1 && memcmp(text, word, sizeof(word) - 1) == 0)

static void on_message(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_message_kind_t kind,
                       const uint8_t *data, size_t len) {
    (void)instance; (void)kind;
    conn_state *state = conn_data;
    const char *text = (const char *)data;
    agenthost_status_t status;
    if (IS("create ")) {
        size_t key_len, secret_len;
        const char *secret;
        key_and_secret(text + 7, len - 7, &key_len, &secret, &secret_len);
        status = host->log_create(conn, (const uint8_t *)text + 7, key_len, (const uint8_t *)secret, secret_len,
                                  (void *)(uintptr_t)conn, &state->log);
        if (status == AGENTHOST_OK) reply(conn, "created", 7); else replyf(conn, "status %lld", status);
    } else if (IS("open ")) {
        size_t key_len, secret_len;
        const char *secret;
        key_and_secret(text + 5, len - 5, &key_len, &secret, &secret_len);
        status = host->log_open(conn, (const uint8_t *)text + 5, key_len, (const uint8_t *)secret, secret_len,
                                &state->log);
        if (status == AGENTHOST_OK) reply(conn, "opened", 6); else replyf(conn, "status %lld", status);
    } else if (IS("append ")) {
        uint64_t seq = 0;
        status = host->log_append(state->log, data + 7, len - 7, &seq);
        if (status == AGENTHOST_OK) replyf(conn, "appended %lld", (long long)seq); else replyf(conn, "status %lld", status);
    } else if (IS("burst ")) {
        char number[16] = {0};
        memcpy(number, text + 6, len - 6 < 15 ? len - 6 : 15);
        long count = atol(number);
        uint64_t seq = 0;
        for (long i = 1; i <= count; i++) {
            char entry[64];
            int n = snprintf(entry, sizeof entry, "{\"n\":%ld}", i);
            if (host->log_append(state->log, (const uint8_t *)entry, (size_t)n, &seq) != AGENTHOST_OK) break;
        }
        replyf(conn, "burst done %lld", (long long)seq);
    } else if (IS("fill ")) {
        char numbers[40] = {0};
        memcpy(numbers, text + 5, len - 5 < 39 ? len - 5 : 39);
        char *rest;
        long count = strtol(numbers, &rest, 10);
        long size = strtol(rest, NULL, 10);
        uint8_t *entry = malloc((size_t)size);
        memset(entry, 'x', (size_t)size);
        uint64_t seq = 0;
        for (long i = 0; i < count; i++) {
            if (host->log_append(state->log, entry, (size_t)size, &seq) != AGENTHOST_OK) break;
        }
        free(entry);
        replyf(conn, "fill done %lld", (long long)seq);
    } else if (IS("end ")) {
        status = host->log_end(state->log, data + 4, len - 4);
        if (status == AGENTHOST_OK) reply(conn, "ended", 5); else replyf(conn, "status %lld", status);
    } else if (IS("watch ")) {
        char number[24] = {0};
        memcpy(number, text + 6, len - 6 < 23 ? len - 6 : 23);
        uint64_t watch_id = 0;
        status = host->log_watch(conn, state->log, strtoull(number, NULL, 10), NULL, &watch_id);
        if (status == AGENTHOST_OK) reply(conn, "watching", 8); else replyf(conn, "status %lld", status);
    } else if (IS("signal ")) {
        status = host->log_signal(state->log, data + 7, len - 7);
        if (status == AGENTHOST_OK) reply(conn, "signalled", 9); else replyf(conn, "status %lld", status);
    } else if (IS("info")) {
        agenthost_log_info_v1 info = {.struct_size = sizeof info};
        status = host->log_info(state->log, &info);
        if (status != AGENTHOST_OK) { replyf(conn, "status %lld", status); return; }
        char out[160];
        int n = snprintf(out, sizeof out, "info %d %llu %llu %s", info.ended, (unsigned long long)info.first_seq,
                         (unsigned long long)info.last_seq, info.status);
        reply(conn, out, (size_t)n);
    } else if (IS("release")) {
        status = host->log_release(state->log);
        if (status == AGENTHOST_OK) reply(conn, "released", 8); else replyf(conn, "status %lld", status);
    } else {
        reply(conn, "unknown command", 15);
    }
}

static void on_event(void *instance, void *conn_data, agenthost_conn_t conn, const agenthost_event_v1 *event) {
    (void)instance;
    if (event->kind == AGENTHOST_EVENT_LOG_SIGNAL) {
        /* conn is 0 and conn_data NULL: the writer's connection is in the signal data. */
        if (conn != 0 || conn_data != NULL) return;
        agenthost_conn_t writer = (agenthost_conn_t)(uintptr_t)event->data;
        char out[512];
        int n = snprintf(out, sizeof out, "signal %.*s", (int)event->log_bytes.len, (const char *)event->log_bytes.ptr);
        host->send(writer, AGENTHOST_MESSAGE_TEXT, (const uint8_t *)out, (size_t)n);
        return;
    }
    if (conn_data == NULL) return; /* a cancelled watch's LOG_END after on_close */
    if (event->kind == AGENTHOST_EVENT_LOG_ENTRY) {
        size_t size = event->log_bytes.len + 32;
        char *out = malloc(size);
        int n = snprintf(out, size, "entry %llu ", (unsigned long long)event->log_seq);
        memcpy(out + n, event->log_bytes.ptr, event->log_bytes.len);
        host->send(conn, AGENTHOST_MESSAGE_BINARY, (const uint8_t *)out, (size_t)n + event->log_bytes.len);
        free(out);
    } else if (event->kind == AGENTHOST_EVENT_LOG_END) {
        char out[160];
        int n = snprintf(out, sizeof out, "end %llu %.*s cancelled=%d", (unsigned long long)event->log_seq,
                         (int)event->log_bytes.len, (const char *)event->log_bytes.ptr, event->cancelled);
        reply(conn, out, (size_t)n);
    }
}

static void on_close(void *instance, void *conn_data, agenthost_conn_t conn, uint16_t code, const uint8_t *reason,
                     size_t reason_len) {
    (void)instance; (void)conn; (void)code; (void)reason; (void)reason_len;
    free(conn_data);
}

static const char *const routes[] = {"/runlog"};
static const agenthost_plugin_v1 descriptor = {
    .struct_size = sizeof(agenthost_plugin_v1), .abi_major = AGENTHOST_ABI_MAJOR, .abi_minor = AGENTHOST_ABI_MINOR,
    .name = "runlog", .version = RUNLOG_VERSION, .routes = routes, .route_count = 1, .instance_create = create,
    .instance_drop = drop, .on_open = on_open, .on_message = on_message, .on_event = on_event,
    .on_writable = NULL, .on_error = NULL, .on_close = on_close};

AGENTHOST_EXPORT const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return &descriptor;
}
