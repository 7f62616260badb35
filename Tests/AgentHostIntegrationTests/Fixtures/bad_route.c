/* A descriptor whose route is not a path. Must be refused (descriptor). */
#include "agenthost_plugin.h"
#include "fixture_common.h"
FIXTURE_DESCRIPTOR(sizeof(agenthost_plugin_v1), AGENTHOST_ABI_MAJOR, "bad-route", "no-leading-slash", fixture_create)
