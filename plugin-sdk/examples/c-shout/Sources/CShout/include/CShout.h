/* c-shout: its entry, declared for its tests (the host finds it by name in the .so). */
#ifndef CShout_H
#define CShout_H

#include "agenthost_plugin.h"

const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor);

#endif
