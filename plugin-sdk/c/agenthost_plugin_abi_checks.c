/* Compile-time checks of the ABI's layout. SwiftPM needs at least one source file in a C target; this one makes
 * sure an accidental edit of the header that would move a field of a version-1 struct fails the build. */
#include "agenthost_plugin.h"

_Static_assert(sizeof(agenthost_conn_t) == 8, "connection handles are 64-bit values");
_Static_assert(offsetof(agenthost_plugin_v1, struct_size) == 0, "every struct starts with struct_size");
_Static_assert(offsetof(agenthost_host_api_v1, struct_size) == 0, "every struct starts with struct_size");
_Static_assert(offsetof(agenthost_open_info_v1, struct_size) == 0, "every struct starts with struct_size");
_Static_assert(offsetof(agenthost_event_v1, struct_size) == 0, "every struct starts with struct_size");
#if UINTPTR_MAX == 0xFFFFFFFFFFFFFFFFu
_Static_assert(offsetof(agenthost_plugin_v1, name) == 16, "v1 layout is frozen");
_Static_assert(offsetof(agenthost_plugin_v1, instance_create) == 48, "v1 layout is frozen");
_Static_assert(AGENTHOST_PLUGIN_V1_MIN_SIZE == 112, "v1 layout is frozen");
_Static_assert(offsetof(agenthost_host_api_v1, send) == 16, "v1 layout is frozen");
_Static_assert(offsetof(agenthost_host_api_v1, log_release) == 144, "v1.1 layout is frozen");
_Static_assert(offsetof(agenthost_host_api_v1, host_info) == 152, "1.2 appends after 1.1");
_Static_assert(offsetof(agenthost_plugin_v1, on_drain) == 112, "1.2 appends after the 1.0 descriptor");
_Static_assert(offsetof(agenthost_plugin_v1, on_upgrade) == 120, "1.2 layout (Plugins/rust-echo pins it too)");
_Static_assert(offsetof(agenthost_host_api_v1, metric_define) == 216, "1.2 layout (Plugins/rust-echo pins it too)");
_Static_assert(sizeof(agenthost_metric_def_v1) == 56, "1.2 layout (Plugins/rust-echo pins it too)");
_Static_assert(sizeof(agenthost_host_info_v1) == 44, "1.2 layout");
_Static_assert(sizeof(agenthost_header_v1) == 32, "1.2 layout");
_Static_assert(offsetof(agenthost_upgrade_request_v1, headers) == 56, "1.2 layout");
_Static_assert(sizeof(agenthost_upgrade_request_v1) == 152, "1.2 layout");
_Static_assert(offsetof(agenthost_upgrade_response_v1, body) == 16, "1.2 layout");
_Static_assert(sizeof(agenthost_upgrade_response_v1) == 40, "1.2 layout");
#endif
