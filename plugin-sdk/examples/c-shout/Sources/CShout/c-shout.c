/* c-shout: a C plugin serving /c-shout. Answers every text message in capitals, followed by its name and
 * version; binary messages come back unchanged. No per-connection state: on_open leaves conn_data NULL. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "CShout.h"

#define PLUGIN_VERSION "1.0.0"

static const agenthost_host_api_v1 *host_api;

static void *plugin_create(const agenthost_host_api_v1 *host, agenthost_instance_ctx *ctx, const uint8_t *config,
                           size_t config_len, char *error, size_t error_capacity) {
    (void)ctx, (void)config, (void)config_len, (void)error, (void)error_capacity;
    host_api = host;
    return (void *)&host_api; /* any non-NULL pointer: the instance has no state of its own */
}

static void plugin_drop(void *instance) { (void)instance; }

static agenthost_status_t plugin_open(void *instance, agenthost_conn_t conn, const agenthost_open_info_v1 *info,
                                      void **conn_data) {
    (void)instance, (void)conn, (void)info;
    *conn_data = NULL;
    return AGENTHOST_OK;
}

static void plugin_message(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_message_kind_t kind,
                           const uint8_t *data, size_t len) {
    (void)instance, (void)conn_data;
    if (kind != AGENTHOST_MESSAGE_TEXT) {
        host_api->send(conn, kind, data, len);
        return;
    }
    static const char suffix[] = " (c-shout " PLUGIN_VERSION ")";
    char *reply = malloc(len + sizeof(suffix));
    if (reply == NULL) return;
    for (size_t i = 0; i < len; i++) reply[i] = (char)toupper(data[i]); /* ASCII only: UTF-8 stays valid */
    snprintf(reply + len, sizeof(suffix), "%s", suffix);
    host_api->send(conn, kind, (const uint8_t *)reply, len + sizeof(suffix) - 1); /* the host copies it */
    free(reply);
}

static void plugin_event(void *instance, void *conn_data, agenthost_conn_t conn, const agenthost_event_v1 *event) {
    (void)instance, (void)conn_data, (void)conn, (void)event;
}

static void plugin_close(void *instance, void *conn_data, agenthost_conn_t conn, uint16_t code, const uint8_t *reason,
                         size_t reason_len) {
    (void)instance, (void)conn_data, (void)conn, (void)code, (void)reason, (void)reason_len;
}

static const char *const plugin_routes[] = {"/c-shout"};

static const agenthost_plugin_v1 plugin_descriptor = {
    .struct_size = sizeof(agenthost_plugin_v1),
    .abi_major = AGENTHOST_ABI_MAJOR,
    .abi_minor = AGENTHOST_ABI_MINOR,
    .name = "c-shout",
    .version = PLUGIN_VERSION,
    .routes = plugin_routes,
    .route_count = 1,
    .instance_create = plugin_create,
    .instance_drop = plugin_drop,
    .on_open = plugin_open,
    .on_message = plugin_message,
    .on_event = plugin_event,
    .on_close = plugin_close,
};

AGENTHOST_EXPORT const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor) {
    (void)host_abi_minor; /* any 1.x host has everything this plugin uses */
    return &plugin_descriptor;
}
