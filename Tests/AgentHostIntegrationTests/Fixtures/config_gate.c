#define _GNU_SOURCE
/* instance_create refuses unless its config says "ready": true: a plugin that cannot start with the config it is
 * given, until the operator fixes the config (not the file). Serves /gate as an echo. */
#include <string.h>
#include <stdio.h>
#include "agenthost_plugin.h"
#include "fixture_common.h"

static void *create(const agenthost_host_api_v1 *host, agenthost_instance_ctx *ctx, const uint8_t *config,
                    size_t config_len, char *error, size_t error_capacity) {
    if (memmem(config, config_len, "\"ready\":true", 12) == NULL) {
        snprintf(error, error_capacity, "plugin_config.gate needs \"ready\": true");
        return NULL;
    }
    return fixture_create_keeping_host(host, ctx, config, config_len, error, error_capacity);
}

static void echo(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_message_kind_t kind,
                 const uint8_t *data, size_t len) {
    (void)instance; (void)conn_data;
    fixture_host->send(conn, kind, data, len);
}

static const char *const routes[] = {"/gate"};
static const agenthost_plugin_v1 descriptor = {
    .struct_size = sizeof(agenthost_plugin_v1), .abi_major = AGENTHOST_ABI_MAJOR, .abi_minor = AGENTHOST_ABI_MINOR,
    .name = "gate", .version = "1.0.0", .routes = routes, .route_count = 1, .instance_create = create,
    .instance_drop = fixture_drop, .on_open = fixture_open, .on_message = echo, .on_event = fixture_event,
    .on_writable = 0, .on_error = 0, .on_close = fixture_close};
AGENTHOST_EXPORT const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return &descriptor;
}
