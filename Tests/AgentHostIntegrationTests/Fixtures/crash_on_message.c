/* A plugin that crashes its process with SIGSEGV on the message "crash" (and echoes anything else): the worker
 * serving it dies, the supervisor logs the cause (the signal, and this plugin's on_message) and starts another.
 * Serves /crash. */
#include <string.h>
#include "agenthost_plugin.h"
#include "fixture_common.h"

static void crash_message(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_message_kind_t kind,
                          const uint8_t *data, size_t len) {
    (void)instance; (void)conn_data;
    if (len == 5 && memcmp(data, "crash", 5) == 0) {
        volatile int *nowhere = 0;
        *nowhere = 1;
    }
    fixture_host->send(conn, kind, data, len);
}

FIXTURE_MESSAGE_DESCRIPTOR("crasher", "/crash", crash_message)
