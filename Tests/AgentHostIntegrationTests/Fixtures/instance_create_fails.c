/* instance_create returns NULL with a reason. Must be refused (instanceCreate) and the reason logged. */
#include <stdio.h>
#include "agenthost_plugin.h"
#include "fixture_common.h"
static void *failing_create(const agenthost_host_api_v1 *host, agenthost_instance_ctx *ctx, const uint8_t *config,
                            size_t config_len, char *error, size_t error_capacity) {
    (void)host; (void)ctx; (void)config; (void)config_len;
    snprintf(error, error_capacity, "model server unreachable");
    return NULL;
}
FIXTURE_DESCRIPTOR(sizeof(agenthost_plugin_v1), AGENTHOST_ABI_MAJOR, "create-fails", "/create-fails", failing_create)
