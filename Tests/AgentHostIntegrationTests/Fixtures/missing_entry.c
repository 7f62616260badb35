/* A shared object that is not an AgentHost plugin: no agenthost_plugin_entry_v1. Must be refused (missingEntry). */
#include <stdint.h>
__attribute__((visibility("default"))) int not_the_entry(void) { return 42; }
