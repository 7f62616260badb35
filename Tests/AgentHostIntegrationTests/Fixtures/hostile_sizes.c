/* Every host function that takes a size, called with (size_t)-1 (a negative length cast, or garbage): each must
 * answer BAD_ARGUMENT (3), never trap. On any message it replies with the statuses, comma-separated. */
#include <stdio.h>
#include "agenthost_plugin.h"
#include "fixture_common.h"

static agenthost_instance_ctx *context;
static void *create(const agenthost_host_api_v1 *host, agenthost_instance_ctx *ctx, const uint8_t *config,
                    size_t config_len, char *error, size_t error_capacity) {
    context = ctx;
    return fixture_create_keeping_host(host, ctx, config, config_len, error, error_capacity);
}

static void message(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_message_kind_t kind,
                    const uint8_t *data, size_t len) {
    (void)instance; (void)conn_data; (void)kind; (void)len;
    const agenthost_host_api_v1 *host = fixture_host;
    const size_t huge = (size_t)-1;
    static const char *const labels[] = {"a"};
    static const double buckets[] = {1};
    const char *values[] = {"x"};
    agenthost_metric_t metric = 0;
    agenthost_metric_def_v1 def = {.struct_size = sizeof def, .kind = AGENTHOST_METRIC_COUNTER, .name = "hostile",
                                   .label_names = labels, .label_count = huge};
    int statuses[7];
    statuses[0] = host->send(conn, AGENTHOST_MESSAGE_TEXT, data, huge);
    statuses[1] = host->close(conn, 1000, data, huge);
    statuses[2] = host->metric_define(context, &def, &metric);
    def.kind = AGENTHOST_METRIC_HISTOGRAM;
    def.label_count = 0;
    def.buckets = buckets;
    def.bucket_count = huge;
    statuses[3] = host->metric_define(context, &def, &metric);
    def.kind = AGENTHOST_METRIC_COUNTER;
    def.buckets = NULL;
    def.bucket_count = 0;
    def.label_count = 1;
    host->metric_define(context, &def, &metric);
    statuses[4] = host->metric_add(metric, values, huge, 1);
    agenthost_log_t log = 0;
    statuses[5] = host->log_create(conn, data, huge, NULL, 0, NULL, &log);
    statuses[6] = host->log_signal(1, data, huge);
    host->log(context, conn, AGENTHOST_LOG_INFO, data, huge);  /* no status: must simply not trap */
    char reply[64];
    int n = snprintf(reply, sizeof reply, "%d,%d,%d,%d,%d,%d,%d", statuses[0], statuses[1], statuses[2], statuses[3],
                     statuses[4], statuses[5], statuses[6]);
    host->send(conn, AGENTHOST_MESSAGE_TEXT, (const uint8_t *)reply, (size_t)n);
}

static const char *const routes[] = {"/hostile"};
static const agenthost_plugin_v1 descriptor = {
    .struct_size = sizeof(agenthost_plugin_v1), .abi_major = AGENTHOST_ABI_MAJOR, .abi_minor = AGENTHOST_ABI_MINOR,
    .name = "hostile", .version = "1.0.0", .routes = routes, .route_count = 1, .instance_create = create,
    .instance_drop = fixture_drop, .on_open = fixture_open, .on_message = message, .on_event = fixture_event,
    .on_writable = 0, .on_error = 0, .on_close = fixture_close};
AGENTHOST_EXPORT const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return &descriptor;
}
