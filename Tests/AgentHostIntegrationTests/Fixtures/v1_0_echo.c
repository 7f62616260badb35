/* A plugin as a version 1.0 build made it: its descriptor ends at on_close (AGENTHOST_PLUGIN_V1_MIN_SIZE) and says
 * minor 0, and it uses only 1.0 host functions. Every later host must load it and serve it unchanged. */
#include "agenthost_plugin.h"
#include "fixture_common.h"

static void echo_message(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_message_kind_t kind,
                         const uint8_t *data, size_t len) {
    (void)instance; (void)conn_data;
    fixture_host->send(conn, kind, data, len);
}

static const char *const routes[] = {"/old-echo"};
static const agenthost_plugin_v1 descriptor = {
    .struct_size = AGENTHOST_PLUGIN_V1_MIN_SIZE, .abi_major = 1, .abi_minor = 0, .name = "old-echo",
    .version = "1.0.0", .routes = routes, .route_count = 1, .instance_create = fixture_create_keeping_host,
    .instance_drop = fixture_drop, .on_open = fixture_open, .on_message = echo_message, .on_event = fixture_event,
    .on_writable = 0, .on_error = 0, .on_close = fixture_close};
AGENTHOST_EXPORT const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return &descriptor;
}
