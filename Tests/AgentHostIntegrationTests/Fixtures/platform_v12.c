/* Records what the ABI 1.2 additions do, for PluginABITests: capabilities (host_info, has_function, log_level),
 * instance posts and timers (one posted from instance_create, one fired, one cancelled, one still pending at the
 * drop), and the drain notice, one line per event in PLATFORM_LOG (a path given with -D). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "agenthost_plugin.h"
#include "fixture_common.h"

static pthread_mutex_t record_lock = PTHREAD_MUTEX_INITIALIZER;
static const agenthost_host_api_v1 *host;
static agenthost_instance_ctx *instance_ctx;
static int tag_fired, tag_cancelled, tag_pending;

/* Appends a line to PLATFORM_LOG (a path given with -D). */
static void record(const char *line) {
    pthread_mutex_lock(&record_lock);
    FILE *log = fopen(PLATFORM_LOG, "a");
    if (log) {
        fprintf(log, "%s\n", line);
        fclose(log);
    }
    pthread_mutex_unlock(&record_lock);
}

static const char *tag_name(void *data) {
    if (data == &tag_fired) return "fired";
    if (data == &tag_cancelled) return "cancelled";
    if (data == &tag_pending) return "pending";
    return "none";
}

static void *create(const agenthost_host_api_v1 *api, agenthost_instance_ctx *ctx, const uint8_t *config,
                    size_t config_len, char *error, size_t error_capacity) {
    (void)config; (void)config_len; (void)error; (void)error_capacity;
    host = api;
    instance_ctx = ctx;
    char line[256];
    agenthost_host_info_v1 info = {.struct_size = sizeof info};
    int status = AGENTHOST_HOST_HAS(api, host_info) ? api->host_info(&info) : -1;
    snprintf(line, sizeof line, "info status=%d abi=%u.%u version=%s", status, info.abi_major, info.abi_minor,
             info.host_version);
    record(line);
    snprintf(line, sizeof line, "has pause_reading=%d log_release=%d nope=%d", api->has_function("pause_reading"),
             api->has_function("log_release"), api->has_function("nope"));
    record(line);
    snprintf(line, sizeof line, "level %d", api->log_level(ctx));
    record(line);
    uint64_t fired, cancelled, pending;
    api->instance_post(ctx, 11, NULL);
    api->instance_timer_start(ctx, 10, &tag_fired, &fired);
    api->instance_timer_start(ctx, 3600 * 1000, &tag_cancelled, &cancelled);
    api->instance_timer_start(ctx, 3600 * 1000, &tag_pending, &pending);
    int first = api->instance_timer_cancel(ctx, cancelled);
    int again = api->instance_timer_cancel(ctx, cancelled);
    snprintf(line, sizeof line, "cancel status=%d again=%d", first, again);
    record(line);
    record("create returned");
    return &fixture_instance;
}

static void event(void *instance, void *conn_data, agenthost_conn_t conn, const agenthost_event_v1 *e) {
    (void)instance; (void)conn_data;
    if (conn != 0) return;
    char line[128];
    snprintf(line, sizeof line, "instance kind=%d id=%llu data=%s cancelled=%d", e->kind,
             e->kind == AGENTHOST_EVENT_POSTED ? (unsigned long long)e->id : 0ULL, tag_name(e->data), e->cancelled);
    record(line);
}

static void drain(void *instance) {
    (void)instance;
    char line[64];
    /* Still accepted while draining: the instance lives until the drop. */
    snprintf(line, sizeof line, "drain post=%d", host->instance_post(instance_ctx, 12, NULL));
    record(line);
}

static void drop(void *instance) {
    (void)instance;
    uint64_t timer;
    char line[64];
    snprintf(line, sizeof line, "drop timer_start=%d", host->instance_timer_start(instance_ctx, 1, NULL, &timer));
    record(line);
}

/* Records what on_upgrade sees; refuses a target containing "refuse" with 409 and a body, selects "second". */
static agenthost_status_t upgrade(void *instance, const agenthost_upgrade_request_v1 *request,
                                  agenthost_upgrade_response_v1 *response) {
    (void)instance;
    char line[1024];
    int at = snprintf(line, sizeof line, "upgrade target=%.*s headers=", (int)request->request_target.len,
                      (const char *)request->request_target.ptr);
    for (size_t i = 0; i < request->header_count && at < 900; i++) {
        at += snprintf(line + at, sizeof line - (size_t)at, "%s%.*s", i ? "," : "", (int)request->headers[i].name.len,
                       (const char *)request->headers[i].name.ptr);
    }
    at += snprintf(line + at, sizeof line - (size_t)at, " subprotocols=");
    int second = -1;
    for (size_t i = 0; i < request->subprotocol_count && at < 1000; i++) {
        at += snprintf(line + at, sizeof line - (size_t)at, "%s%.*s", i ? "," : "", (int)request->subprotocols[i].len,
                       (const char *)request->subprotocols[i].ptr);
        if (request->subprotocols[i].len == 6 && memcmp(request->subprotocols[i].ptr, "second", 6) == 0) second = (int)i;
    }
    record(line);
    if (memmem(request->request_target.ptr, request->request_target.len, "refuse", 6) != NULL) {
        static const char body[] = "not this one";
        memcpy(response->body, body, sizeof body - 1);
        response->body_len = sizeof body - 1;
        response->status = 409;
        return AGENTHOST_ERROR;
    }
    response->subprotocol = second;
    return AGENTHOST_OK;
}

static const char *const routes[] = {"/platform"};
static const agenthost_plugin_v1 descriptor = {
    .struct_size = sizeof(agenthost_plugin_v1), .abi_major = AGENTHOST_ABI_MAJOR, .abi_minor = AGENTHOST_ABI_MINOR,
    .name = "platform", .version = "1.2.0", .routes = routes, .route_count = 1, .instance_create = create,
    .instance_drop = drop, .on_open = fixture_open, .on_message = fixture_message, .on_event = event,
    .on_writable = 0, .on_error = 0, .on_close = fixture_close, .on_drain = drain, .on_upgrade = upgrade};
AGENTHOST_EXPORT const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return &descriptor;
}
