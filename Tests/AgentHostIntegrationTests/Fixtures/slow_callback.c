/* A plugin whose on_message takes 80 ms before echoing: the host must log it as a slow callback, with its
 * duration, and still deliver the echo. Its on_upgrade takes 80 ms for a target containing "slow-upgrade". */
#include <string.h>
#include <unistd.h>
#include "agenthost_plugin.h"
#include "fixture_common.h"

static const agenthost_host_api_v1 *slow_host;

static void *slow_create(const agenthost_host_api_v1 *host, agenthost_instance_ctx *ctx, const uint8_t *config,
                         size_t config_len, char *error, size_t error_capacity) {
    (void)ctx; (void)config; (void)config_len; (void)error; (void)error_capacity;
    slow_host = host;
    return &fixture_instance;
}

static void slow_message(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_message_kind_t kind,
                         const uint8_t *data, size_t len) {
    (void)instance; (void)conn_data;
    usleep(80 * 1000);
    slow_host->send(conn, kind, data, len);
}

static agenthost_status_t slow_upgrade(void *instance, const agenthost_upgrade_request_v1 *request,
                                       agenthost_upgrade_response_v1 *response) {
    (void)instance; (void)response;
    if (memmem(request->request_target.ptr, request->request_target.len, "slow-upgrade", 12) != NULL) usleep(80 * 1000);
    return AGENTHOST_OK;
}

static const char *const slow_routes[] = {"/slow"};
static const agenthost_plugin_v1 slow_descriptor = {
    .struct_size = sizeof(agenthost_plugin_v1), .abi_major = AGENTHOST_ABI_MAJOR, .abi_minor = AGENTHOST_ABI_MINOR,
    .name = "slow", .version = "1.0.0", .routes = slow_routes, .route_count = 1, .instance_create = slow_create,
    .instance_drop = fixture_drop, .on_open = fixture_open, .on_message = slow_message, .on_event = fixture_event,
    .on_writable = 0, .on_error = 0, .on_close = fixture_close, .on_upgrade = slow_upgrade};

AGENTHOST_EXPORT const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return &slow_descriptor;
}
