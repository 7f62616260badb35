/* echo: the reference C plugin. Serves /echo and sends every message back unchanged (text as text, binary as
 * binary). It keeps no per-connection state, so on_open leaves conn_data NULL.
 *
 * Build by hand (what `swift build` does for the agenthost-echo product):
 *   cc -shared -fPIC -O2 -I plugin-sdk/c/include -o libagenthost-echo.so Plugins/echo/echo.c
 */
#include <stdio.h>
#include <string.h>

#include "agenthost_plugin.h"

typedef struct echo_instance {
    const agenthost_host_api_v1 *host;
    agenthost_instance_ctx *ctx;
} echo_instance;

/* One static instance: the host creates at most one instance per loaded copy of the library. */
static echo_instance the_instance;

static void *echo_create(const agenthost_host_api_v1 *host, agenthost_instance_ctx *ctx, const uint8_t *config,
                         size_t config_len, char *error, size_t error_capacity) {
    (void)config;
    (void)config_len;
    if (host->struct_size < offsetof(agenthost_host_api_v1, release_conn) + sizeof(void *)) {
        snprintf(error, error_capacity, "host function table too short (%u bytes)", host->struct_size);
        return NULL;
    }
    the_instance.host = host;
    the_instance.ctx = ctx;
    static const char hello[] = "echo plugin ready";
    host->log(ctx, 0, AGENTHOST_LOG_DEBUG, (const uint8_t *)hello, sizeof(hello) - 1);
    return &the_instance;
}

static void echo_drop(void *instance) { (void)instance; }

static agenthost_status_t echo_open(void *instance, agenthost_conn_t conn, const agenthost_open_info_v1 *info,
                                    void **conn_data) {
    (void)instance;
    (void)conn;
    (void)info;
    *conn_data = NULL;
    return AGENTHOST_OK;
}

static void echo_message(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_message_kind_t kind,
                         const uint8_t *data, size_t len) {
    (void)conn_data;
    echo_instance *self = instance;
    /* BACKPRESSURE means "queued, slow down": an echo cannot slow its client down other than by the host's own
     * read backpressure, so it simply keeps echoing; past the hard limit the host closes the connection. */
    (void)self->host->send(conn, kind, data, len);
}

static void echo_event(void *instance, void *conn_data, agenthost_conn_t conn, const agenthost_event_v1 *event) {
    (void)instance;
    (void)conn_data;
    (void)conn;
    (void)event;
}

static void echo_close(void *instance, void *conn_data, agenthost_conn_t conn, uint16_t code, const uint8_t *reason,
                       size_t reason_len) {
    (void)instance;
    (void)conn_data;
    (void)conn;
    (void)code;
    (void)reason;
    (void)reason_len;
}

static const char *const echo_routes[] = {"/echo"};

static const agenthost_plugin_v1 echo_descriptor = {
    .struct_size = sizeof(agenthost_plugin_v1),
    .abi_major = AGENTHOST_ABI_MAJOR,
    .abi_minor = AGENTHOST_ABI_MINOR,
    .name = "echo",
    .version = "1.0.0",
    .routes = echo_routes,
    .route_count = 1,
    .instance_create = echo_create,
    .instance_drop = echo_drop,
    .on_open = echo_open,
    .on_message = echo_message,
    .on_event = echo_event,
    .on_writable = NULL,
    .on_error = NULL,
    .on_close = echo_close,
};

AGENTHOST_EXPORT const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor) {
    (void)host_abi_minor; /* any 1.x host has everything this plugin uses */
    return &echo_descriptor;
}
