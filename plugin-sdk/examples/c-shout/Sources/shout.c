/* c-shout: a C plugin built as a package of its own. Serves /shout and answers every text message in capitals
 * (binary messages come back unchanged). No per-connection state: on_open leaves conn_data NULL. */
#include <ctype.h>
#include <stdlib.h>

#include "agenthost_plugin.h"

static const agenthost_host_api_v1 *host_api;

static void *shout_create(const agenthost_host_api_v1 *host, agenthost_instance_ctx *ctx, const uint8_t *config,
                          size_t config_len, char *error, size_t error_capacity) {
    (void)ctx, (void)config, (void)config_len, (void)error, (void)error_capacity;
    host_api = host;
    return (void *)&host_api; /* any non-NULL pointer: the instance has no state of its own */
}

static void shout_drop(void *instance) { (void)instance; }

static agenthost_status_t shout_open(void *instance, agenthost_conn_t conn, const agenthost_open_info_v1 *info,
                                     void **conn_data) {
    (void)instance, (void)conn, (void)info;
    *conn_data = NULL;
    return AGENTHOST_OK;
}

static void shout_message(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_message_kind_t kind,
                          const uint8_t *data, size_t len) {
    (void)instance, (void)conn_data;
    if (kind != AGENTHOST_MESSAGE_TEXT) {
        host_api->send(conn, kind, data, len);
        return;
    }
    uint8_t *loud = malloc(len ? len : 1);
    if (loud == NULL) return;
    for (size_t i = 0; i < len; i++) loud[i] = (uint8_t)toupper(data[i]); /* ASCII only: UTF-8 stays valid */
    host_api->send(conn, kind, loud, len);                              /* the host copies: free at once */
    free(loud);
}

static void shout_event(void *instance, void *conn_data, agenthost_conn_t conn, const agenthost_event_v1 *event) {
    (void)instance, (void)conn_data, (void)conn, (void)event;
}

static void shout_close(void *instance, void *conn_data, agenthost_conn_t conn, uint16_t code, const uint8_t *reason,
                        size_t reason_len) {
    (void)instance, (void)conn_data, (void)conn, (void)code, (void)reason, (void)reason_len;
}

static const char *const shout_routes[] = {"/shout"};

static const agenthost_plugin_v1 shout_descriptor = {
    .struct_size = sizeof(agenthost_plugin_v1),
    .abi_major = AGENTHOST_ABI_MAJOR,
    .abi_minor = AGENTHOST_ABI_MINOR,
    .name = "c-shout",
    .version = "1.0.0",
    .routes = shout_routes,
    .route_count = 1,
    .instance_create = shout_create,
    .instance_drop = shout_drop,
    .on_open = shout_open,
    .on_message = shout_message,
    .on_event = shout_event,
    .on_close = shout_close,
};

AGENTHOST_EXPORT const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor) {
    (void)host_abi_minor; /* any 1.x host has everything this plugin uses */
    return &shout_descriptor;
}
