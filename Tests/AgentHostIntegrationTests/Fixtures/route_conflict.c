/* A valid plugin that claims /echo, which the echo plugin (loaded first: files load in name order) already
 * serves. Must be refused (routeConflict); /echo keeps its first owner. The file is named zz_ so it sorts last. */
#include "agenthost_plugin.h"
#include "fixture_common.h"
FIXTURE_DESCRIPTOR(sizeof(agenthost_plugin_v1), AGENTHOST_ABI_MAJOR, "echo-thief", "/echo", fixture_create)
