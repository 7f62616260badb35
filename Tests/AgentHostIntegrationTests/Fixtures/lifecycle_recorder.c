/* A plugin that records every callback it receives (readable through the exported recorder_log()) and answers
 * commands sent as text messages, so tests can check the ABI's promises from the plugin's side:
 *   "close-me"   -> host->close(conn, 4000, "bye")
 *   "bad-close"  -> tries close codes 1005, 1006, 1015, 999 and replies with their statuses, e.g. "3,3,3,3"
 *   "stale"      -> sends on the handle of the previous connection and replies with the status ("1" = CLOSED)
 *   "post"       -> a new thread calls host->post(); on_event then sends "posted"
 *   "timer"      -> timer_start(10 ms); on_event sends "timer fired"
 *   "bad-utf8"   -> sends invalid UTF-8 as text and replies with the status ("3" = BAD_ARGUMENT)
 *   anything else is echoed. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "agenthost_plugin.h"

static const agenthost_host_api_v1 *host;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char events[65536];
static size_t events_len;
static agenthost_conn_t previous_conn;

static void record(const char *line) {
    pthread_mutex_lock(&lock);
    size_t n = strlen(line);
    if (events_len + n + 1 < sizeof(events)) {
        memcpy(events + events_len, line, n);
        events_len += n;
        events[events_len++] = '\n';
        events[events_len] = 0;
    }
    pthread_mutex_unlock(&lock);
}

AGENTHOST_EXPORT const char *recorder_log(void) { return events; }

static void reply(agenthost_conn_t conn, const char *text) {
    host->send(conn, AGENTHOST_MESSAGE_TEXT, (const uint8_t *)text, strlen(text));
}

static void *create(const agenthost_host_api_v1 *h, agenthost_instance_ctx *ctx, const uint8_t *config,
                    size_t config_len, char *error, size_t error_capacity) {
    (void)ctx; (void)error; (void)error_capacity;
    host = h;
    char line[256];
    snprintf(line, sizeof line, "create config=%.*s", (int)config_len, (const char *)config);
    record(line);
    return &host;
}

static void drop(void *instance) { (void)instance; record("drop"); }

static agenthost_status_t on_open(void *instance, agenthost_conn_t conn, const agenthost_open_info_v1 *info,
                                  void **conn_data) {
    (void)instance;
    char line[1024];
    snprintf(line, sizeof line, "open route=%.*s target=%.*s sub=%.*s scopes=%.*s protocol=%.*s",
             (int)info->route.len, (const char *)info->route.ptr, (int)info->request_target.len,
             (const char *)info->request_target.ptr, (int)info->identity_subject.len,
             (const char *)info->identity_subject.ptr, (int)info->identity_scopes.len,
             (const char *)info->identity_scopes.ptr, (int)info->subprotocol.len, (const char *)info->subprotocol.ptr);
    record(line);
    *conn_data = (void *)(uintptr_t)conn; /* anything non-NULL: checked in on_event */
    return AGENTHOST_OK;
}

struct post_job { agenthost_conn_t conn; };
static void *post_thread(void *arg) {
    struct post_job *job = arg;
    host->post(job->conn, 7, job);
    return NULL;
}

static void on_message(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_message_kind_t kind,
                       const uint8_t *data, size_t len) {
    (void)instance; (void)conn_data;
    char line[64];
    snprintf(line, sizeof line, "message kind=%d len=%zu", kind, len);
    record(line);
    if (kind == AGENTHOST_MESSAGE_TEXT && len == 8 && memcmp(data, "close-me", 8) == 0) {
        host->close(conn, 4000, (const uint8_t *)"bye", 3);
    } else if (kind == AGENTHOST_MESSAGE_TEXT && len == 9 && memcmp(data, "bad-close", 9) == 0) {
        char out[64];
        snprintf(out, sizeof out, "%d,%d,%d,%d", host->close(conn, 1005, NULL, 0), host->close(conn, 1006, NULL, 0),
                 host->close(conn, 1015, NULL, 0), host->close(conn, 999, NULL, 0));
        reply(conn, out);
    } else if (kind == AGENTHOST_MESSAGE_TEXT && len == 5 && memcmp(data, "stale", 5) == 0) {
        char out[16];
        snprintf(out, sizeof out, "%d", host->send(previous_conn, AGENTHOST_MESSAGE_TEXT, (const uint8_t *)"x", 1));
        reply(conn, out);
    } else if (kind == AGENTHOST_MESSAGE_TEXT && len == 4 && memcmp(data, "post", 4) == 0) {
        static struct post_job job;
        job.conn = conn;
        pthread_t thread;
        pthread_create(&thread, NULL, post_thread, &job);
        pthread_detach(thread);
    } else if (kind == AGENTHOST_MESSAGE_TEXT && len == 5 && memcmp(data, "timer", 5) == 0) {
        uint64_t id = 0;
        host->timer_start(conn, 10, NULL, &id);
    } else if (kind == AGENTHOST_MESSAGE_TEXT && len == 8 && memcmp(data, "bad-utf8", 8) == 0) {
        const uint8_t bad[] = {0xC3, 0x28};
        char out[16];
        snprintf(out, sizeof out, "%d", host->send(conn, AGENTHOST_MESSAGE_TEXT, bad, sizeof bad));
        reply(conn, out);
    } else {
        host->send(conn, kind, data, len);
    }
}

static void on_event(void *instance, void *conn_data, agenthost_conn_t conn, const agenthost_event_v1 *event) {
    (void)instance;
    char line[96];
    snprintf(line, sizeof line, "event kind=%d id=%llu cancelled=%d", event->kind, (unsigned long long)event->id,
             event->cancelled);
    record(line);
    if (event->cancelled || conn_data == NULL) return;
    reply(conn, event->kind == AGENTHOST_EVENT_POSTED ? "posted" : "timer fired");
}

static void on_error(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_error_kind_t kind,
                     const uint8_t *message, size_t len) {
    (void)instance; (void)conn_data; (void)conn;
    char line[256];
    snprintf(line, sizeof line, "error kind=%d %.*s", kind, (int)len, (const char *)message);
    record(line);
}

static void on_close(void *instance, void *conn_data, agenthost_conn_t conn, uint16_t code, const uint8_t *reason,
                     size_t reason_len) {
    (void)instance; (void)conn_data;
    char line[256];
    snprintf(line, sizeof line, "close code=%u reason=%.*s", code, (int)reason_len, (const char *)reason);
    record(line);
    previous_conn = conn;
}

/* -DRECORDER_ROUTE='"/probe/*"' serves another route (a pattern, for the path policy tests). */
#ifndef RECORDER_ROUTE
#define RECORDER_ROUTE "/recorder"
#endif
static const char *const routes[] = {RECORDER_ROUTE};
static const agenthost_plugin_v1 descriptor = {
    .struct_size = sizeof(agenthost_plugin_v1), .abi_major = AGENTHOST_ABI_MAJOR, .abi_minor = AGENTHOST_ABI_MINOR,
    .name = "recorder", .version = "1.0.0", .routes = routes, .route_count = 1, .instance_create = create,
    .instance_drop = drop, .on_open = on_open, .on_message = on_message, .on_event = on_event, .on_writable = 0,
    .on_error = on_error, .on_close = on_close};

AGENTHOST_EXPORT const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return &descriptor;
}
