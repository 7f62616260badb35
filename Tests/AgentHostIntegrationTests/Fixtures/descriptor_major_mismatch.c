/* The v1 entry symbol, but a descriptor that claims ABI major 2. Must be refused (abiVersion). */
#include "agenthost_plugin.h"
#include "fixture_common.h"
FIXTURE_DESCRIPTOR(sizeof(agenthost_plugin_v1), 2, "major-mismatch", "/major-mismatch", fixture_create)
