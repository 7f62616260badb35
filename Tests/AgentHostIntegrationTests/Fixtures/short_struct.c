/* A descriptor whose struct_size is shorter than a version-1 descriptor (an old or broken build).
 * Must be refused (descriptor) before any field past struct_size is read. */
#include "agenthost_plugin.h"
#include "fixture_common.h"
FIXTURE_DESCRIPTOR(40, AGENTHOST_ABI_MAJOR, "short-struct", "/short-struct", fixture_create)
