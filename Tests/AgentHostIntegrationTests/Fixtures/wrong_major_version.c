/* A plugin built for a future ABI major version: it exports agenthost_plugin_entry_v2 only. Must be refused
 * (abiVersion) with a message naming version 2. */
#include <stddef.h>
#include <stdint.h>
__attribute__((visibility("default"))) const void *agenthost_plugin_entry_v2(uint32_t host_minor) {
    (void)host_minor;
    return NULL;
}
