/* chat: chat rooms on /chat, the example of the plugin platform's ABI 1.2 additions.
 *
 *   ws://host/chat?room=NAME     NAME is 1-32 of [a-z0-9-] ("lobby" when absent)
 *
 * Every text message a member sends goes to every member of its room (itself included) as
 *   {"type":"message","from":ID,"text":"..."}
 * and the server also sends {"type":"joined"|"left","member":ID,"members":N}, a periodic
 * {"type":"presence","members":N}, {"type":"slowed","resume_in_ms":N} and {"type":"draining"}.
 *
 * What it shows, each behind a capability check so the same file still loads (with less) on an older host:
 *   - instance timers (instance_timer_start): the presence broadcast, re-armed from on_event with conn 0;
 *   - inbound flow control (pause_reading/resume_reading): "slow mode". A member that sends more than
 *     `slow_mode_messages` in `slow_mode_window_ms` is not read until the window ends: its later messages are
 *     delayed, never dropped, and TCP pushes back on the client;
 *   - the drain notice (on_drain): members are told to reconnect when a new version takes over;
 *   - the pre-upgrade hook (on_upgrade): a bad room name is refused with 400 and a JSON reason before the 101,
 *     and the "chat.v1" subprotocol is selected when offered;
 *   - log_level: the per-join debug line is not even formatted unless someone reads it;
 *   - metrics (metric_define/add/set/observe): agenthost_plugin_chat_messages_total{plugin="chat",kind=...},
 *     agenthost_plugin_chat_members, agenthost_plugin_chat_rooms, agenthost_plugin_chat_message_bytes (a
 *     histogram) and agenthost_plugin_chat_slowed_total at the host's /metrics. No label carries a room name:
 *     clients choose those, and every label value is a series kept for good.
 *
 * Config (plugin_config.chat in the host's config file), all optional:
 *   {"presence_interval_ms": 30000, "slow_mode_messages": 20, "slow_mode_window_ms": 1000}
 *
 * Build by hand (what `swift build` does for the agenthost-chat product):
 *   cc -shared -fPIC -O2 -pthread -I plugin-sdk/c/include -o libagenthost-chat.so Plugins/chat/chat.c
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agenthost_plugin.h"

#ifndef CHAT_VERSION
#define CHAT_VERSION "1.0.0"
#endif

typedef struct room {
    char name[33];
    size_t members;
} room;

typedef struct member {
    agenthost_conn_t conn;
    uint64_t id;
    room *room;
    uint64_t window_start_ms;
    uint32_t sent_in_window;
} member;

typedef struct chat_instance {
    const agenthost_host_api_v1 *host;
    agenthost_instance_ctx *ctx;
    pthread_mutex_t lock; /* connections of different event loops call in concurrently */
    member **members;
    size_t member_count, member_capacity;
    room **rooms;
    size_t room_count, room_capacity;
    uint64_t next_member_id;
    uint64_t presence_interval_ms;
    uint32_t slow_mode_messages;
    uint64_t slow_mode_window_ms;
    int has_flow_control;
    /* Metrics (0 when the host has none): exported at the host's /metrics as agenthost_plugin_<name>. No room
     * label: clients name rooms, and a label must take few values (each value is a series kept for good). */
    agenthost_metric_t messages_total, members_gauge, rooms_gauge, message_bytes, slowed_total;
} chat_instance;

/* One instance per loaded copy of the library. */
static chat_instance the_instance;

static uint64_t now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* The number after "key": in the config JSON, or `fallback`. Enough for this example's flat numeric keys; a real
 * plugin would use a JSON parser. */
static uint64_t config_number(const uint8_t *config, size_t len, const char *key, uint64_t fallback) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\"", key);
    size_t pattern_len = strlen(pattern);
    for (size_t i = 0; i + pattern_len <= len; i++) {
        if (memcmp(config + i, pattern, pattern_len) != 0) continue;
        size_t j = i + pattern_len;
        while (j < len && (config[j] == ' ' || config[j] == ':')) j++;
        if (j == len || config[j] < '0' || config[j] > '9') return fallback;
        uint64_t value = 0;
        while (j < len && config[j] >= '0' && config[j] <= '9' && value < 1000000000000ULL) {
            value = value * 10 + (uint64_t)(config[j++] - '0');
        }
        return value;
    }
    return fallback;
}

static void send_text(chat_instance *chat, agenthost_conn_t conn, const char *text, size_t len) {
    chat->host->send(conn, AGENTHOST_MESSAGE_TEXT, (const uint8_t *)text, len);
}

/* Sends `text` to every member of `r` (all rooms when NULL). Caller holds the lock: send copies and never calls
 * back, so holding it is safe. */
static void broadcast_locked(chat_instance *chat, const room *r, const char *text, size_t len) {
    for (size_t i = 0; i < chat->member_count; i++) {
        if (r == NULL || chat->members[i]->room == r) send_text(chat, chat->members[i]->conn, text, len);
    }
}

/* Appends `data` to `out` as the inside of a JSON string. Returns the new length, or 0 if it does not fit. */
static size_t json_escape(char *out, size_t at, size_t capacity, const uint8_t *data, size_t len) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        uint8_t c = data[i];
        if (at + 6 >= capacity) return 0;
        if (c == '"' || c == '\\') {
            out[at++] = '\\';
            out[at++] = (char)c;
        } else if (c < 0x20) {
            memcpy(out + at, "\\u00", 4);
            out[at + 4] = hex[c >> 4];
            out[at + 5] = hex[c & 15];
            at += 6;
        } else {
            out[at++] = (char)c; /* UTF-8 passes through: the host checked it */
        }
    }
    return at;
}

static int valid_room(const char *name, size_t len) {
    if (len == 0 || len > 32) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return 0;
    }
    return 1;
}

/* The room named in the request target's query (room=NAME), "lobby" when absent; 0 if the name is invalid. */
static int room_from_target(const agenthost_bytes *target, char *name) {
    const char *query = memchr(target->ptr, '?', target->len);
    const char *end = (const char *)target->ptr + target->len;
    strcpy(name, "lobby");
    if (query == NULL) return 1;
    for (const char *p = query + 1; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) >= 5 && memcmp(p, "room=", 5) == 0) {
            size_t len = (size_t)(stop - p - 5);
            if (!valid_room(p + 5, len)) return 0;
            memcpy(name, p + 5, len);
            name[len] = 0;
            return 1;
        }
        p = stop + 1;
    }
    return 1;
}

static room *join_room_locked(chat_instance *chat, const char *name) {
    for (size_t i = 0; i < chat->room_count; i++) {
        if (strcmp(chat->rooms[i]->name, name) == 0) return chat->rooms[i];
    }
    if (chat->room_count == chat->room_capacity) {
        size_t capacity = chat->room_capacity ? chat->room_capacity * 2 : 8;
        room **grown = realloc(chat->rooms, capacity * sizeof *grown);
        if (grown == NULL) return NULL;
        chat->rooms = grown;
        chat->room_capacity = capacity;
    }
    room *r = calloc(1, sizeof *r);
    if (r == NULL) return NULL;
    strcpy(r->name, name);
    chat->rooms[chat->room_count++] = r;
    return r;
}

static void leave_room_locked(chat_instance *chat, room *r) {
    if (--r->members > 0) return;
    for (size_t i = 0; i < chat->room_count; i++) {
        if (chat->rooms[i] == r) {
            chat->rooms[i] = chat->rooms[--chat->room_count];
            free(r);
            return;
        }
    }
}

static void announce_locked(chat_instance *chat, const char *type, const member *m) {
    char text[128];
    int len = snprintf(text, sizeof text, "{\"type\":\"%s\",\"member\":%llu,\"members\":%zu}", type,
                       (unsigned long long)m->id, m->room->members);
    broadcast_locked(chat, m->room, text, (size_t)len);
}

/* Defines the plugin's metrics; a host without metric_define leaves the handles 0 and updates are skipped. */
static void define_metrics(chat_instance *chat) {
    if (!AGENTHOST_HOST_HAS(chat->host, metric_define)) return;
    static const char *const kind_label[] = {"kind"};
    static const double byte_buckets[] = {16, 64, 256, 1024, 4096};
    agenthost_metric_def_v1 def = {.struct_size = sizeof def, .kind = AGENTHOST_METRIC_COUNTER,
                                   .name = "chat_messages_total", .help = "Chat messages, by what became of them",
                                   .label_names = kind_label, .label_count = 1};
    chat->host->metric_define(chat->ctx, &def, &chat->messages_total);
    def.kind = AGENTHOST_METRIC_GAUGE;
    def.label_names = NULL;
    def.label_count = 0;
    def.name = "chat_members";
    def.help = "Members connected";
    chat->host->metric_define(chat->ctx, &def, &chat->members_gauge);
    def.name = "chat_rooms";
    def.help = "Rooms with at least one member";
    chat->host->metric_define(chat->ctx, &def, &chat->rooms_gauge);
    def.kind = AGENTHOST_METRIC_HISTOGRAM;
    def.name = "chat_message_bytes";
    def.help = "Size of the messages members send";
    def.buckets = byte_buckets;
    def.bucket_count = sizeof byte_buckets / sizeof byte_buckets[0];
    chat->host->metric_define(chat->ctx, &def, &chat->message_bytes);
    def.kind = AGENTHOST_METRIC_COUNTER;
    def.name = "chat_slowed_total";
    def.help = "Times a member was slowed (its reading paused) for sending too fast";
    def.buckets = NULL;
    def.bucket_count = 0;
    chat->host->metric_define(chat->ctx, &def, &chat->slowed_total);
}

/* Gauges follow the member and room counts; called with the lock held. */
static void count_members_locked(chat_instance *chat, double change) {
    if (!chat->members_gauge) return;
    chat->host->metric_add(chat->members_gauge, NULL, 0, change);
    chat->host->metric_set(chat->rooms_gauge, NULL, 0, (double)chat->room_count);
}

/* The messages counter, labelled by a fixed set of kinds: "relayed", "refused" (binary or too long). */
static void count_message(chat_instance *chat, const char *kind) {
    const char *labels[] = {kind};
    if (chat->messages_total) chat->host->metric_add(chat->messages_total, labels, 1, 1);
}

static void arm_presence(chat_instance *chat) {
    uint64_t timer;
    if (chat->presence_interval_ms > 0 && AGENTHOST_HOST_HAS(chat->host, instance_timer_start)) {
        chat->host->instance_timer_start(chat->ctx, chat->presence_interval_ms, NULL, &timer);
    }
}

static void *chat_create(const agenthost_host_api_v1 *host, agenthost_instance_ctx *ctx, const uint8_t *config,
                         size_t config_len, char *error, size_t error_capacity) {
    if (host->struct_size < offsetof(agenthost_host_api_v1, release_conn) + sizeof(void *)) {
        snprintf(error, error_capacity, "host function table too short (%u bytes)", host->struct_size);
        return NULL;
    }
    chat_instance *chat = &the_instance;
    memset(chat, 0, sizeof *chat);
    chat->host = host;
    chat->ctx = ctx;
    pthread_mutex_init(&chat->lock, NULL);
    chat->next_member_id = 1;
    chat->presence_interval_ms = config_number(config, config_len, "presence_interval_ms", 30000);
    chat->slow_mode_messages = (uint32_t)config_number(config, config_len, "slow_mode_messages", 20);
    chat->slow_mode_window_ms = config_number(config, config_len, "slow_mode_window_ms", 1000);
    chat->has_flow_control = AGENTHOST_HOST_HAS(host, pause_reading) && AGENTHOST_HOST_HAS(host, resume_reading);
    if (!chat->has_flow_control) {
        static const char note[] = "this host has no pause_reading: slow mode is off";
        host->log(ctx, 0, AGENTHOST_LOG_WARNING, (const uint8_t *)note, sizeof note - 1);
    }
    define_metrics(chat);
    arm_presence(chat);
    return chat;
}

static void chat_drop(void *instance) {
    chat_instance *chat = instance;
    /* Every connection closed before the drop, so every member and room is gone already. */
    free(chat->members);
    free(chat->rooms);
    pthread_mutex_destroy(&chat->lock);
}

/* Before the 101: a bad room name gets a 400 with a reason (not a 101 and then a 1011), and the "chat.v1"
 * subprotocol is selected when the client offers it. Runs on the event loop: only cheap checks here. */
static agenthost_status_t chat_upgrade(void *instance, const agenthost_upgrade_request_v1 *request,
                                       agenthost_upgrade_response_v1 *response) {
    (void)instance;
    char name[33];
    if (!room_from_target(&request->request_target, name)) {
        static const char body[] = "{\"error\":\"room must be 1-32 characters of [a-z0-9-]\"}";
        size_t len = sizeof body - 1 < response->body_capacity ? sizeof body - 1 : response->body_capacity;
        memcpy(response->body, body, len);
        response->body_len = len;
        response->status = 400;
        return AGENTHOST_ERROR;
    }
    for (size_t i = 0; i < request->subprotocol_count; i++) {
        const agenthost_bytes *offered = &request->subprotocols[i];
        if (offered->len == 7 && memcmp(offered->ptr, "chat.v1", 7) == 0) response->subprotocol = (int32_t)i;
    }
    return AGENTHOST_OK;
}

static agenthost_status_t chat_open(void *instance, agenthost_conn_t conn, const agenthost_open_info_v1 *info,
                                    void **conn_data) {
    chat_instance *chat = instance;
    char name[33];
    /* on_upgrade refused bad names already; a host older than 1.2 has no on_upgrade, and this refuses them. */
    if (!room_from_target(&info->request_target, name)) return AGENTHOST_ERROR;
    member *m = calloc(1, sizeof *m);
    if (m == NULL) return AGENTHOST_ERROR;
    m->conn = conn;
    m->window_start_ms = now_ms();
    pthread_mutex_lock(&chat->lock);
    if (chat->member_count == chat->member_capacity) {
        size_t capacity = chat->member_capacity ? chat->member_capacity * 2 : 16;
        member **grown = realloc(chat->members, capacity * sizeof *grown);
        if (grown == NULL) {
            pthread_mutex_unlock(&chat->lock);
            free(m);
            return AGENTHOST_ERROR;
        }
        chat->members = grown;
        chat->member_capacity = capacity;
    }
    m->room = join_room_locked(chat, name);
    if (m->room == NULL) {
        pthread_mutex_unlock(&chat->lock);
        free(m);
        return AGENTHOST_ERROR;
    }
    m->room->members++;
    count_members_locked(chat, 1);
    m->id = chat->next_member_id++;
    chat->members[chat->member_count++] = m;
    announce_locked(chat, "joined", m);
    pthread_mutex_unlock(&chat->lock);
    if (AGENTHOST_HOST_HAS(chat->host, log_level) && chat->host->log_level(chat->ctx) <= AGENTHOST_LOG_DEBUG) {
        char line[96];
        int len = snprintf(line, sizeof line, "member %llu joined %s", (unsigned long long)m->id, name);
        chat->host->log(chat->ctx, conn, AGENTHOST_LOG_DEBUG, (const uint8_t *)line, (size_t)len);
    }
    *conn_data = m;
    return AGENTHOST_OK;
}

static void chat_message(void *instance, void *conn_data, agenthost_conn_t conn, agenthost_message_kind_t kind,
                         const uint8_t *data, size_t len) {
    chat_instance *chat = instance;
    member *m = conn_data;
    if (kind != AGENTHOST_MESSAGE_TEXT) {
        count_message(chat, "refused");
        static const char reason[] = "chat takes text messages";
        chat->host->close(conn, 1003, (const uint8_t *)reason, sizeof reason - 1);
        return;
    }
    char text[8192];
    int head = snprintf(text, sizeof text, "{\"type\":\"message\",\"from\":%llu,\"text\":\"", (unsigned long long)m->id);
    size_t at = json_escape(text, (size_t)head, sizeof text - 2, data, len);
    if (at == 0) {
        count_message(chat, "refused");
        static const char reason[] = "message too long for chat";
        chat->host->close(conn, 1009, (const uint8_t *)reason, sizeof reason - 1);
        return;
    }
    text[at++] = '"';
    text[at++] = '}';
    pthread_mutex_lock(&chat->lock);
    broadcast_locked(chat, m->room, text, at);
    pthread_mutex_unlock(&chat->lock);
    count_message(chat, "relayed");
    if (chat->message_bytes) chat->host->metric_observe(chat->message_bytes, NULL, 0, (double)len);

    /* Slow mode: past the window's allowance, stop reading this member until the window ends. Its next messages
     * wait in TCP buffers, in order; none is dropped. */
    if (!chat->has_flow_control || chat->slow_mode_messages == 0) return;
    uint64_t now = now_ms();
    if (now - m->window_start_ms >= chat->slow_mode_window_ms) {
        m->window_start_ms = now;
        m->sent_in_window = 0;
    }
    if (++m->sent_in_window < chat->slow_mode_messages) return;
    uint64_t wait = chat->slow_mode_window_ms - (now - m->window_start_ms);
    uint64_t timer;
    if (chat->host->pause_reading(conn) != AGENTHOST_OK) return;
    if (chat->host->timer_start(conn, wait, NULL, &timer) != AGENTHOST_OK) {
        chat->host->resume_reading(conn);
        return;
    }
    if (chat->slowed_total) chat->host->metric_add(chat->slowed_total, NULL, 0, 1);
    char notice[64];
    int notice_len = snprintf(notice, sizeof notice, "{\"type\":\"slowed\",\"resume_in_ms\":%llu}", (unsigned long long)wait);
    send_text(chat, conn, notice, (size_t)notice_len);
}

static void chat_event(void *instance, void *conn_data, agenthost_conn_t conn, const agenthost_event_v1 *event) {
    chat_instance *chat = instance;
    if (event->kind != AGENTHOST_EVENT_TIMER || event->cancelled) return;
    if (conn != 0) {
        /* The member's slow-mode window is over: read it again. */
        member *m = conn_data;
        m->window_start_ms = now_ms();
        m->sent_in_window = 0;
        chat->host->resume_reading(conn);
        return;
    }
    /* The instance's presence timer: each member hears its room's size, then the timer is armed again. */
    pthread_mutex_lock(&chat->lock);
    for (size_t i = 0; i < chat->member_count; i++) {
        char text[64];
        int len = snprintf(text, sizeof text, "{\"type\":\"presence\",\"members\":%zu}", chat->members[i]->room->members);
        send_text(chat, chat->members[i]->conn, text, (size_t)len);
    }
    pthread_mutex_unlock(&chat->lock);
    arm_presence(chat);
}

static void chat_close(void *instance, void *conn_data, agenthost_conn_t conn, uint16_t code, const uint8_t *reason,
                       size_t reason_len) {
    (void)conn;
    (void)code;
    (void)reason;
    (void)reason_len;
    chat_instance *chat = instance;
    member *m = conn_data;
    pthread_mutex_lock(&chat->lock);
    for (size_t i = 0; i < chat->member_count; i++) {
        if (chat->members[i] == m) {
            chat->members[i] = chat->members[--chat->member_count];
            break;
        }
    }
    announce_locked(chat, "left", m);
    leave_room_locked(chat, m->room);
    count_members_locked(chat, -1);
    pthread_mutex_unlock(&chat->lock);
    free(m);
}

/* A new version serves new members from now on: tell these ones to reconnect (they may finish what they were
 * saying; the host closes them with 1012 at the drain deadline). */
static void chat_drain(void *instance) {
    chat_instance *chat = instance;
    static const char text[] = "{\"type\":\"draining\",\"version\":\"" CHAT_VERSION "\"}";
    pthread_mutex_lock(&chat->lock);
    broadcast_locked(chat, NULL, text, sizeof text - 1);
    pthread_mutex_unlock(&chat->lock);
}

static const char *const chat_routes[] = {"/chat"};

static const agenthost_plugin_v1 chat_descriptor = {
    .struct_size = sizeof(agenthost_plugin_v1),
    .abi_major = AGENTHOST_ABI_MAJOR,
    .abi_minor = AGENTHOST_ABI_MINOR,
    .name = "chat",
    .version = CHAT_VERSION,
    .routes = chat_routes,
    .route_count = 1,
    .instance_create = chat_create,
    .instance_drop = chat_drop,
    .on_open = chat_open,
    .on_message = chat_message,
    .on_event = chat_event,
    .on_writable = NULL,
    .on_error = NULL,
    .on_close = chat_close,
    .on_drain = chat_drain,
    .on_upgrade = chat_upgrade,
};

AGENTHOST_EXPORT const agenthost_plugin_v1 *agenthost_plugin_entry_v1(uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return &chat_descriptor;
}
