/* A plugin whose on_message never returns on the message "block" (it sleeps forever, as a deadlocked or
 * spinning callback would), and echoes anything else: the watchdog must kill its worker and say which plugin and
 * callback held the event loop. Serves /stuck. */
#include <string.h>
#include <unistd.h>
#include "agenthost_plugin.h"
#include "fixture_common.h"

static void stuck_message(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_message_kind_t kind,
                          const uint8_t *data, size_t len) {
    (void)instance; (void)conn_data;
    if (len == 5 && memcmp(data, "block", 5) == 0) {
        for (;;) sleep(1);
    }
    fixture_host->send(conn, kind, data, len);
}

FIXTURE_MESSAGE_DESCRIPTOR("stuck", "/stuck", stuck_message)
