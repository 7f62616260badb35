/* A descriptor whose on_message and on_event are NULL: refused (descriptor), naming both callbacks. */
#include "agenthost_plugin.h"
#include "fixture_common.h"
static const char *const routes[] = {"/missing-callbacks"};
static const agenthost_plugin_v1 descriptor = {
    .struct_size = sizeof(agenthost_plugin_v1), .abi_major = AGENTHOST_ABI_MAJOR, .abi_minor = AGENTHOST_ABI_MINOR,
    .name = "missing-callbacks", .version = "0.0.1", .routes = routes, .route_count = 1,
    .instance_create = fixture_create, .instance_drop = fixture_drop, .on_open = fixture_open, .on_message = 0,
    .on_event = 0, .on_writable = 0, .on_error = 0, .on_close = fixture_close};
AGENTHOST_EXPORT const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return &descriptor;
}
