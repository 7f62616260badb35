/* Appends "create <thread name>" and "drop <thread name>" to THREAD_LOG (a path given with -D): which host
 * thread ran instance_create and instance_drop. Both may block (a plugin waiting for its own workers), so the host
 * must run them on its blocking thread pool, never on Swift's cooperative pool. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include "agenthost_plugin.h"
#include "fixture_common.h"

static void record(const char *what) {
    char name[32] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    FILE *log = fopen(THREAD_LOG, "a");
    if (log) {
        fprintf(log, "%s %s\n", what, name);
        fclose(log);
    }
}
static void *create_recording(const agenthost_host_api_v1 *host, agenthost_instance_ctx *ctx, const uint8_t *config,
                              size_t config_len, char *error, size_t error_capacity) {
    record("create");
    return fixture_create(host, ctx, config, config_len, error, error_capacity);
}
static void drop_recording(void *instance) {
    (void)instance;
    record("drop");
}
static const char *const routes[] = {"/thread-names"};
static const agenthost_plugin_v1 descriptor = {
    .struct_size = sizeof(agenthost_plugin_v1), .abi_major = AGENTHOST_ABI_MAJOR, .abi_minor = AGENTHOST_ABI_MINOR,
    .name = "thread-names", .version = "0.0.1", .routes = routes, .route_count = 1,
    .instance_create = create_recording, .instance_drop = drop_recording, .on_open = fixture_open,
    .on_message = fixture_message, .on_event = fixture_event, .on_writable = 0, .on_error = 0,
    .on_close = fixture_close};
AGENTHOST_EXPORT const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return &descriptor;
}
