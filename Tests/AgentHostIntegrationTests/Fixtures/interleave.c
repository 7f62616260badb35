/* A plugin that sends from two threads in an order it decides: on "go N" a thread of its own sends the numbers
 * 1, 2, 3, ... (N of them) and, every fourth, posts an event whose callback (on the event loop) sends the next
 * number too. One lock hands out the numbers, so the plugin's send order is 1, 2, 3, ...: the client must receive
 * exactly that, whichever thread each send came from. Last, an event posted by the thread sends "done" from the
 * loop and closes with 1000: both must come after the thread's sends too. Serves /interleave, one run per connection. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "agenthost_plugin.h"
#include "fixture_common.h"

static const agenthost_host_api_v1 *interleave_host;
static pthread_mutex_t order = PTHREAD_MUTEX_INITIALIZER;
static unsigned next_number;

typedef struct {
    agenthost_conn_t conn;
    int count;
} interleave_run;

/* Sends the next number; the lock makes the plugin's order of sends the order of the numbers. */
static void send_next(agenthost_conn_t conn) {
    char text[16];
    pthread_mutex_lock(&order);
    int len = snprintf(text, sizeof text, "%u", ++next_number);
    interleave_host->send(conn, AGENTHOST_MESSAGE_TEXT, (const uint8_t *)text, (size_t)len);
    pthread_mutex_unlock(&order);
}

static void *interleave_thread(void *argument) {
    interleave_run *run = argument;
    for (int i = 1; i <= run->count; i++) {
        send_next(run->conn);
        if (i % 4 == 0) interleave_host->post(run->conn, 1, 0);
    }
    interleave_host->post(run->conn, 2, 0);
    interleave_host->release_conn(run->conn);
    free(run);
    return 0;
}

static void *interleave_create(const agenthost_host_api_v1 *host, agenthost_instance_ctx *ctx, const uint8_t *config,
                               size_t config_len, char *error, size_t error_capacity) {
    (void)ctx; (void)config; (void)config_len; (void)error; (void)error_capacity;
    interleave_host = host;
    return &fixture_instance;
}

static void interleave_message(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_message_kind_t kind,
                               const uint8_t *data, size_t len) {
    (void)instance; (void)conn_data; (void)kind;
    char text[32] = {0};
    memcpy(text, data, len < sizeof text - 1 ? len : sizeof text - 1);
    int count = 0;
    if (sscanf(text, "go %d", &count) != 1 || count <= 0) return;
    interleave_run *run = malloc(sizeof *run);
    run->conn = conn;
    run->count = count;
    pthread_mutex_lock(&order);
    next_number = 0;
    pthread_mutex_unlock(&order);
    interleave_host->retain_conn(conn);
    pthread_t thread;
    pthread_create(&thread, 0, interleave_thread, run);
    pthread_detach(thread);
}

static void interleave_event(void *instance, void *conn_data, agenthost_conn_t conn, const agenthost_event_v1 *event) {
    (void)instance; (void)conn_data;
    if (event->cancelled) return;
    if (event->id == 1) {
        send_next(conn);
    } else {
        /* Posted after the thread's last send, which may still be on its way to the loop. */
        interleave_host->send(conn, AGENTHOST_MESSAGE_TEXT, (const uint8_t *)"done", 4);
        interleave_host->close(conn, 1000, (const uint8_t *)"all sent", 8);
    }
}

static const char *const interleave_routes[] = {"/interleave"};
static const agenthost_plugin_v1 interleave_descriptor = {
    .struct_size = sizeof(agenthost_plugin_v1), .abi_major = AGENTHOST_ABI_MAJOR, .abi_minor = AGENTHOST_ABI_MINOR,
    .name = "interleave", .version = "1.0.0", .routes = interleave_routes, .route_count = 1,
    .instance_create = interleave_create, .instance_drop = fixture_drop, .on_open = fixture_open,
    .on_message = interleave_message, .on_event = interleave_event, .on_writable = 0, .on_error = 0,
    .on_close = fixture_close};

AGENTHOST_EXPORT const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return &interleave_descriptor;
}
