/* Shared scaffolding of the failure fixtures: a minimal plugin whose descriptor fields a fixture chooses. */
#ifndef FIXTURE_COMMON_H
#define FIXTURE_COMMON_H
#include "agenthost_plugin.h"

static int fixture_instance;
static void *fixture_create(const agenthost_host_api_v1 *host, agenthost_instance_ctx *ctx, const uint8_t *config,
                            size_t config_len, char *error, size_t error_capacity) {
    (void)host; (void)ctx; (void)config; (void)config_len; (void)error; (void)error_capacity;
    return &fixture_instance;
}
static void fixture_drop(void *instance) { (void)instance; }
static agenthost_status_t fixture_open(void *instance, agenthost_conn_t conn, const agenthost_open_info_v1 *info,
                                       void **conn_data) {
    (void)instance; (void)conn; (void)info; (void)conn_data;
    return AGENTHOST_OK;
}
static void fixture_message(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_message_kind_t kind,
                            const uint8_t *data, size_t len) {
    (void)instance; (void)conn_data; (void)conn; (void)kind; (void)data; (void)len;
}
static void fixture_event(void *instance, void *conn_data, agenthost_conn_t conn, const agenthost_event_v1 *event) {
    (void)instance; (void)conn_data; (void)conn; (void)event;
}
static void fixture_close(void *instance, void *conn_data, agenthost_conn_t conn, uint16_t code,
                          const uint8_t *reason, size_t reason_len) {
    (void)instance; (void)conn_data; (void)conn; (void)code; (void)reason; (void)reason_len;
}

#define FIXTURE_DESCRIPTOR(SIZE, MAJOR, NAME, ROUTE, CREATE)                                                     \
    static const char *const fixture_routes[] = {ROUTE};                                                         \
    static const agenthost_plugin_v1 fixture_descriptor = {                                                      \
        .struct_size = (SIZE), .abi_major = (MAJOR), .abi_minor = AGENTHOST_ABI_MINOR, .name = (NAME),           \
        .version = "0.0.1", .routes = fixture_routes, .route_count = 1, .instance_create = (CREATE),             \
        .instance_drop = fixture_drop, .on_open = fixture_open, .on_message = fixture_message,                  \
        .on_event = fixture_event, .on_writable = 0, .on_error = 0, .on_close = fixture_close};                 \
    AGENTHOST_EXPORT const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor) {           \
        (void)host_abi_minor;                                                                                    \
        return &fixture_descriptor;                                                                              \
    }
/* A fixture with its own on_message, serving ROUTE; fixture_host is the host table, for send. */
static const agenthost_host_api_v1 *fixture_host;
static void *fixture_create_keeping_host(const agenthost_host_api_v1 *host, agenthost_instance_ctx *ctx,
                                         const uint8_t *config, size_t config_len, char *error,
                                         size_t error_capacity) {
    (void)ctx; (void)config; (void)config_len; (void)error; (void)error_capacity;
    fixture_host = host;
    return &fixture_instance;
}

#define FIXTURE_MESSAGE_DESCRIPTOR(NAME, ROUTE, MESSAGE)                                                         \
    static const char *const fixture_routes[] = {ROUTE};                                                         \
    static const agenthost_plugin_v1 fixture_descriptor = {                                                      \
        .struct_size = sizeof(agenthost_plugin_v1), .abi_major = AGENTHOST_ABI_MAJOR,                            \
        .abi_minor = AGENTHOST_ABI_MINOR, .name = (NAME), .version = "1.0.0", .routes = fixture_routes,          \
        .route_count = 1, .instance_create = fixture_create_keeping_host, .instance_drop = fixture_drop,         \
        .on_open = fixture_open, .on_message = (MESSAGE), .on_event = fixture_event, .on_writable = 0,           \
        .on_error = 0, .on_close = fixture_close};                                                               \
    AGENTHOST_EXPORT const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor) {           \
        (void)host_abi_minor;                                                                                    \
        return &fixture_descriptor;                                                                              \
    }
#endif
