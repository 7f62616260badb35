/* An echo plugin whose replies carry its build's version as a prefix ("v3:hello"), so reload tests can tell which
 * generation answered. Build with -DVERSION_TAG='"v3"'. Serves /versioned. */
#include <stdio.h>
#include <string.h>
#include "agenthost_plugin.h"
#include "fixture_common.h"

#ifndef VERSION_TAG
#define VERSION_TAG "v1"
#endif

static const agenthost_host_api_v1 *versioned_host;

static void *versioned_create(const agenthost_host_api_v1 *host, agenthost_instance_ctx *ctx, const uint8_t *config,
                              size_t config_len, char *error, size_t error_capacity) {
    (void)ctx; (void)config; (void)config_len; (void)error; (void)error_capacity;
    versioned_host = host;
    return &fixture_instance;
}

static void versioned_message(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_message_kind_t kind,
                              const uint8_t *data, size_t len) {
    (void)instance; (void)conn_data;
    char reply[4096];
    int prefix = snprintf(reply, sizeof reply, "%s:", VERSION_TAG);
    if (len > sizeof reply - (size_t)prefix) len = sizeof reply - (size_t)prefix;
    memcpy(reply + prefix, data, len);
    versioned_host->send(conn, kind, (const uint8_t *)reply, (size_t)prefix + len);
}

#ifdef OPEN_DELAY_MS
/* -DOPEN_DELAY_MS=N: on_open takes N ms, so a reload can land while a connection is still opening. */
#include <unistd.h>
static agenthost_status_t versioned_open(void *instance, agenthost_conn_t conn, const agenthost_open_info_v1 *info,
                                         void **conn_data) {
    (void)instance; (void)conn; (void)info; (void)conn_data;
    usleep(OPEN_DELAY_MS * 1000);
    return AGENTHOST_OK;
}
#else
#define versioned_open fixture_open
#endif

static const char *const versioned_routes[] = {"/versioned"};
static const agenthost_plugin_v1 versioned_descriptor = {
    .struct_size = sizeof(agenthost_plugin_v1), .abi_major = AGENTHOST_ABI_MAJOR, .abi_minor = AGENTHOST_ABI_MINOR,
    .name = "versioned", .version = VERSION_TAG, .routes = versioned_routes, .route_count = 1,
    .instance_create = versioned_create, .instance_drop = fixture_drop, .on_open = versioned_open,
    .on_message = versioned_message, .on_event = fixture_event, .on_writable = 0, .on_error = 0,
    .on_close = fixture_close};

AGENTHOST_EXPORT const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return &versioned_descriptor;
}
