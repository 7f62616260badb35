/* A plugin that ignores backpressure: on any message it sends 1024 messages of 64 KiB (64 MiB) in one callback,
 * counting what the host answered. The host must cut the connection off at its outbound hard limit (close 1008),
 * tell the plugin (on_error POLICY, then on_close), and refuse the rest with AGENTHOST_CLOSED.
 * firehose_report() returns "ok=N backpressure=N closed=N error=K close=C". Serves /firehose. */
#include <stdio.h>
#include <string.h>
#include "agenthost_plugin.h"
#include "fixture_common.h"

static const agenthost_host_api_v1 *firehose_host;
static int sent_ok, sent_backpressure, sent_closed, error_kind, close_code;
static char report[128];
static uint8_t chunk[64 * 1024];

AGENTHOST_EXPORT const char *firehose_report(void) {
    snprintf(report, sizeof report, "ok=%d backpressure=%d closed=%d error=%d close=%d", sent_ok, sent_backpressure,
             sent_closed, error_kind, close_code);
    return report;
}

static void *firehose_create(const agenthost_host_api_v1 *host, agenthost_instance_ctx *ctx, const uint8_t *config,
                             size_t config_len, char *error, size_t error_capacity) {
    (void)ctx; (void)config; (void)config_len; (void)error; (void)error_capacity;
    firehose_host = host;
    memset(chunk, 'x', sizeof chunk);
    return &fixture_instance;
}

static void firehose_message(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_message_kind_t kind,
                             const uint8_t *data, size_t len) {
    (void)instance; (void)conn_data; (void)kind; (void)data; (void)len;
    for (int i = 0; i < 1024; i++) {
        switch (firehose_host->send(conn, AGENTHOST_MESSAGE_BINARY, chunk, sizeof chunk)) {
        case AGENTHOST_OK: sent_ok++; break;
        case AGENTHOST_BACKPRESSURE: sent_backpressure++; break;
        default: sent_closed++; break;
        }
    }
}

static void firehose_error(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_error_kind_t kind,
                           const uint8_t *message, size_t len) {
    (void)instance; (void)conn_data; (void)conn; (void)message; (void)len;
    error_kind = kind;
}

static void firehose_close(void *instance, void *conn_data, agenthost_conn_t conn, uint16_t code,
                           const uint8_t *reason, size_t reason_len) {
    (void)instance; (void)conn_data; (void)conn; (void)reason; (void)reason_len;
    close_code = code;
}

static const char *const firehose_routes[] = {"/firehose"};
static const agenthost_plugin_v1 firehose_descriptor = {
    .struct_size = sizeof(agenthost_plugin_v1), .abi_major = AGENTHOST_ABI_MAJOR, .abi_minor = AGENTHOST_ABI_MINOR,
    .name = "firehose", .version = "1.0.0", .routes = firehose_routes, .route_count = 1,
    .instance_create = firehose_create, .instance_drop = fixture_drop, .on_open = fixture_open,
    .on_message = firehose_message, .on_event = fixture_event, .on_writable = 0, .on_error = firehose_error,
    .on_close = firehose_close};

AGENTHOST_EXPORT const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return &firehose_descriptor;
}
