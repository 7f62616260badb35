/*
 * agenthost_agent.h: the agent protocol (plugin-sdk/agent-protocol.md) for plugins written in C.
 *
 * Small, header-only helpers: read the client's frames (start, stop, input_response, ping, resume), write the
 * server's frames with the envelope (v, run_id, seq, ts), and build AutoGen-shaped events (TextMessage,
 * ModelClientStreamingChunkEvent) with ids and timestamps as AutoGen writes them. Everything else (when to
 * stream, stop, time out) is the plugin's: see Plugins/c-agent/c_agent.c for a complete route.
 *
 * Depends on the C standard library and agenthost_plugin.h only. Not thread-safe per buffer; no global state.
 * Strings handed in are UTF-8 and NUL-terminated unless a length is given.
 */
#ifndef AGENTHOST_AGENT_H
#define AGENTHOST_AGENT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "agenthost_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AGH_PROTOCOL_VERSION 1

/* ---------------------------------------------------------------------------------------------------------------
 * A growable byte buffer: frames are built into one, then handed to host->send(conn, TEXT, buf.data, buf.len).
 * ------------------------------------------------------------------------------------------------------------- */
typedef struct agh_buf {
    char *data;
    size_t len;
    size_t cap;
    int failed; /* set if an allocation failed: the buffer is then empty and stays so */
} agh_buf;

static inline void agh_buf_init(agh_buf *b) { b->data = NULL; b->len = 0; b->cap = 0; b->failed = 0; }
static inline void agh_buf_free(agh_buf *b) { free(b->data); agh_buf_init(b); }
static inline void agh_buf_reset(agh_buf *b) { b->len = 0; }

static inline void agh_buf_put(agh_buf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *grown = (char *)realloc(b->data, cap);
        if (!grown) { free(b->data); agh_buf_init(b); b->failed = 1; return; }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}
static inline void agh_buf_puts(agh_buf *b, const char *s) { agh_buf_put(b, s, strlen(s)); }
static inline void agh_buf_u64(agh_buf *b, uint64_t v) {
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    agh_buf_put(b, digits, (size_t)n);
}

/* Appends `s` (n bytes of UTF-8) as a JSON string literal, quotes included. */
static inline void agh_buf_json_string(agh_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    agh_buf_put(b, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c != '"' && c != '\\' && c >= 0x20) continue;
        agh_buf_put(b, s + start, i - start);
        start = i + 1;
        switch (c) {
        case '"': agh_buf_put(b, "\\\"", 2); break;
        case '\\': agh_buf_put(b, "\\\\", 2); break;
        case '\n': agh_buf_put(b, "\\n", 2); break;
        case '\r': agh_buf_put(b, "\\r", 2); break;
        case '\t': agh_buf_put(b, "\\t", 2); break;
        default: {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            agh_buf_put(b, esc, 6);
        }
        }
    }
    agh_buf_put(b, s + start, n - start);
    agh_buf_put(b, "\"", 1);
}
static inline void agh_buf_json_cstring(agh_buf *b, const char *s) { agh_buf_json_string(b, s, strlen(s)); }

/* ---------------------------------------------------------------------------------------------------------------
 * Ids and times as AutoGen writes them.
 * ------------------------------------------------------------------------------------------------------------- */

/* A random (version 4) UUID in lowercase, as AutoGen's message ids: `out` holds 37 bytes. */
static inline void agh_new_id(char out[37]) {
    unsigned char r[16];
    /* getrandom: one system call, no file descriptor (every event gets an id: this is on the streaming path). */
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        for (size_t i = 0; i < sizeof r; i++) r[i] = (unsigned char)rand();
    }
    r[6] = (unsigned char)((r[6] & 0x0F) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3F) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
             r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
}

/* Now in UTC with microseconds: "…Z" for event payloads (AutoGen's .dump()), "…+00:00" for frames (Studio's
 * timestamp). `out` holds 40 bytes. */
static inline void agh_timestamp(char out[40], int zulu) {
    struct timespec ts;
    struct tm parts;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &parts);
    snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02d.%06ld%s", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
             parts.tm_hour, parts.tm_min, parts.tm_sec, ts.tv_nsec / 1000, zulu ? "Z" : "+00:00");
}

/* ---------------------------------------------------------------------------------------------------------------
 * AutoGen-shaped events (the `data` of message / message_chunk frames), same fields in the same order as
 * AutoGen agentchat 0.7.5's .dump(). `id` may be NULL for a new one.
 * ------------------------------------------------------------------------------------------------------------- */
static inline void agh__event_head(agh_buf *b, const char *id, const char *source) {
    char fresh[37], now[40];
    if (!id) { agh_new_id(fresh); id = fresh; }
    agh_timestamp(now, 1);
    agh_buf_puts(b, "{\"id\":");
    agh_buf_json_cstring(b, id);
    agh_buf_puts(b, ",\"source\":");
    agh_buf_json_cstring(b, source);
    agh_buf_puts(b, ",\"models_usage\":null,\"metadata\":{},\"created_at\":\"");
    agh_buf_puts(b, now);
    agh_buf_puts(b, "\",\"content\":");
}

static inline void agh_event_text_message(agh_buf *b, const char *id, const char *source, const char *content,
                                          size_t content_len) {
    agh__event_head(b, id, source);
    agh_buf_json_string(b, content, content_len);
    agh_buf_puts(b, ",\"type\":\"TextMessage\"}");
}

static inline void agh_event_chunk(agh_buf *b, const char *source, const char *content, size_t content_len,
                                   const char *full_message_id) {
    agh__event_head(b, NULL, source);
    agh_buf_json_string(b, content, content_len);
    agh_buf_puts(b, ",\"full_message_id\":");
    agh_buf_json_cstring(b, full_message_id);
    agh_buf_puts(b, ",\"type\":\"ModelClientStreamingChunkEvent\"}");
}

/* ---------------------------------------------------------------------------------------------------------------
 * Server frames. Frames of a run carry the envelope; `seq` counts 1, 2, 3, ... per run (the terminal frame too).
 * ------------------------------------------------------------------------------------------------------------- */
static inline void agh__envelope_token(agh_buf *b, const char *run_id, uint64_t seq, const char *resume_token) {
    char now[40];
    agh_timestamp(now, 0);
    agh_buf_puts(b, ",\"v\":1,\"run_id\":");
    agh_buf_json_cstring(b, run_id);
    agh_buf_puts(b, ",\"seq\":");
    agh_buf_u64(b, seq);
    agh_buf_puts(b, ",\"ts\":\"");
    agh_buf_puts(b, now);
    agh_buf_puts(b, "\"");
    if (resume_token) { agh_buf_puts(b, ",\"resume_token\":"); agh_buf_json_cstring(b, resume_token); }
    agh_buf_puts(b, "}");
}
static inline void agh__envelope(agh_buf *b, const char *run_id, uint64_t seq) { agh__envelope_token(b, run_id, seq, NULL); }

/* {"type":"message"|"message_chunk","data":EVENT,...envelope}. `event_json` is one of the agh_event_* results. */
static inline void agh_frame_event(agh_buf *b, int is_chunk, const char *event_json, size_t event_len,
                                   const char *run_id, uint64_t seq) {
    agh_buf_puts(b, is_chunk ? "{\"type\":\"message_chunk\",\"data\":" : "{\"type\":\"message\",\"data\":");
    agh_buf_put(b, event_json, event_len);
    agh__envelope(b, run_id, seq);
}

/* The same, with the run's resume token: the first frame of an anonymous starter's run carries it (and no
 * other frame), so only that client can resume the run elsewhere. */
static inline void agh_frame_event_token(agh_buf *b, int is_chunk, const char *event_json, size_t event_len,
                                         const char *run_id, uint64_t seq, const char *resume_token) {
    agh_buf_puts(b, is_chunk ? "{\"type\":\"message_chunk\",\"data\":" : "{\"type\":\"message\",\"data\":");
    agh_buf_put(b, event_json, event_len);
    agh__envelope_token(b, run_id, seq, resume_token);
}

/* The terminal frame of a completed run. `task_result_json` is {"messages":[...],"stop_reason":...}. */
static inline void agh_frame_result(agh_buf *b, const char *task_result_json, size_t task_result_len,
                                    double duration, const char *run_id, uint64_t seq) {
    char seconds[32];
    snprintf(seconds, sizeof seconds, "%.6f", duration);
    agh_buf_puts(b, "{\"type\":\"result\",\"data\":{\"task_result\":");
    agh_buf_put(b, task_result_json, task_result_len);
    agh_buf_puts(b, ",\"usage\":\"\",\"duration\":");
    agh_buf_puts(b, seconds);
    agh_buf_puts(b, "},\"status\":\"complete\"");
    agh__envelope(b, run_id, seq);
}

/* The terminal frame of a run that did not complete: `status` is "cancelled", "error" or "timeout". */
static inline void agh_frame_completion(agh_buf *b, const char *status, const char *reason, const char *run_id,
                                        uint64_t seq) {
    char now[40];
    agh_timestamp(now, 0);
    agh_buf_puts(b, "{\"type\":\"completion\",\"status\":");
    agh_buf_json_cstring(b, status);
    agh_buf_puts(b, ",\"data\":{\"task_result\":{\"messages\":[],\"stop_reason\":");
    agh_buf_json_cstring(b, reason);
    agh_buf_puts(b, "},\"usage\":\"\",\"duration\":0},\"stop_reason\":");
    agh_buf_json_cstring(b, reason);
    agh_buf_puts(b, ",\"timestamp\":\"");
    agh_buf_puts(b, now);
    agh_buf_puts(b, "\"");
    agh__envelope(b, run_id, seq);
}

/* An error about a client frame (not part of a run's stream: no seq). `code` is one of the documented codes
 * (invalid_json, invalid_frame, unknown_type, run_exists, unknown_run, ...). `run_id` may be NULL. */
static inline void agh_frame_error(agh_buf *b, const char *code, const char *message, const char *run_id) {
    char now[40];
    agh_timestamp(now, 0);
    agh_buf_puts(b, "{\"type\":\"error\",\"error\":");
    agh_buf_json_cstring(b, message);
    agh_buf_puts(b, ",\"code\":");
    agh_buf_json_cstring(b, code);
    agh_buf_puts(b, ",\"timestamp\":\"");
    agh_buf_puts(b, now);
    agh_buf_puts(b, "\",\"v\":1");
    if (run_id) { agh_buf_puts(b, ",\"run_id\":"); agh_buf_json_cstring(b, run_id); }
    agh_buf_puts(b, ",\"ts\":\"");
    agh_buf_puts(b, now);
    agh_buf_puts(b, "\"}");
}

/* "system" (sent once when the socket opens) and "pong" (the answer to ping). */
static inline void agh_frame_simple(agh_buf *b, const char *type, const char *status) {
    char now[40];
    agh_timestamp(now, 0);
    agh_buf_puts(b, "{\"type\":");
    agh_buf_json_cstring(b, type);
    if (status) { agh_buf_puts(b, ",\"status\":"); agh_buf_json_cstring(b, status); }
    agh_buf_puts(b, ",\"timestamp\":\"");
    agh_buf_puts(b, now);
    agh_buf_puts(b, "\",\"v\":1,\"ts\":\"");
    agh_buf_puts(b, now);
    agh_buf_puts(b, "\"}");
}

/* ---------------------------------------------------------------------------------------------------------------
 * Client frames. A small reader for the flat objects clients send: top-level string and integer fields are
 * decoded; nested values (a task given as an AutoGen message, a team_config) are skipped, and `task` is then
 * reported as AGH_TASK_NOT_TEXT. Hand-written because C has no JSON in its standard library and a plugin should
 * not need a dependency to read five fields.
 * ------------------------------------------------------------------------------------------------------------- */
typedef enum {
    AGH_FRAME_INVALID_JSON = -2, /* not a JSON object */
    AGH_FRAME_UNKNOWN = -1,      /* an object whose type is missing or unknown */
    AGH_FRAME_START = 1,
    AGH_FRAME_STOP = 2,
    AGH_FRAME_INPUT_RESPONSE = 3,
    AGH_FRAME_PING = 4,
    AGH_FRAME_RESUME = 5,
} agh_frame_type;

#define AGH_FIELD_MAX 4096

#define AGH_RUN_ID_MAX 128

typedef struct agh_client_frame {
    agh_frame_type type;
    char type_name[64];
    char run_id[AGH_RUN_ID_MAX + 1]; /* "" if absent (or null); never a truncated id: see run_id_invalid */
    int run_id_invalid;        /* 1 if run_id was given but is not a valid run id (agh_run_id_valid): answer
                                * invalid_frame (AGH_RUN_ID_INVALID_MESSAGE), whatever the frame's type */
    char task[AGH_FIELD_MAX];  /* start: the task text */
    int task_is_text;          /* 1 if task was a JSON string */
    char response[AGH_FIELD_MAX];
    char request_id[129];
    char reason[256];
    char resume_token[257];    /* resume: the token of an anonymous run, "" if absent */
    long long last_seq;        /* resume: -1 if absent */
} agh_client_frame;

/* What the Swift SDK answers (with code invalid_frame) for a run_id it does not take. */
#define AGH_RUN_ID_INVALID_MESSAGE "run_id must be 1-128 characters of A-Z a-z 0-9 . _ : - (or a whole number >= 0)"

/* Whether `id` (n bytes) is a run id as the agent protocol takes it (and the Swift SDK checks it): 1 to 128 of
 * [A-Za-z0-9._:-]. Ids are echoed in every frame and name the run's log: never truncate one to fit. */
static inline int agh_run_id_valid(const char *id, size_t n) {
    if (n < 1 || n > AGH_RUN_ID_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

static inline const char *agh__ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* Decodes the JSON string at p (at its opening quote) into out (truncated to cap-1 bytes); *decoded (may be NULL)
 * gets the whole decoded length, truncated or not. Returns the position after the closing quote, or NULL if the
 * string is malformed. */
static inline const char *agh__string_n(const char *p, const char *end, char *out, size_t cap, size_t *decoded) {
    size_t n = 0;
    if (p >= end || *p != '"') return NULL;
    for (p++; p < end; p++) {
        unsigned int c = (unsigned char)*p;
        if (c == '"') {
            if (out && cap) out[n < cap ? n : cap - 1] = 0;
            if (decoded) *decoded = n;
            return p + 1;
        }
        if (c < 0x20) return NULL;
        if (c == '\\') {
            if (++p >= end) return NULL;
            switch (*p) {
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            case '/': c = '/'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u': {
                if (end - p < 5) return NULL;
                char hex[5] = {p[1], p[2], p[3], p[4], 0};
                char *stop;
                c = (unsigned int)strtoul(hex, &stop, 16);
                if (stop != hex + 4) return NULL;
                p += 4;
                if (c >= 0xD800 && c <= 0xDBFF && end - p >= 7 && p[1] == '\\' && p[2] == 'u') {
                    char low[5] = {p[3], p[4], p[5], p[6], 0};
                    unsigned int l = (unsigned int)strtoul(low, &stop, 16);
                    if (stop == low + 4 && l >= 0xDC00 && l <= 0xDFFF) {
                        c = 0x10000 + ((c - 0xD800) << 10) + (l - 0xDC00);
                        p += 6;
                    }
                }
                unsigned char utf8[4];
                int len;
                if (c < 0x80) { utf8[0] = (unsigned char)c; len = 1; }
                else if (c < 0x800) { utf8[0] = (unsigned char)(0xC0 | (c >> 6)); utf8[1] = (unsigned char)(0x80 | (c & 0x3F)); len = 2; }
                else if (c < 0x10000) { utf8[0] = (unsigned char)(0xE0 | (c >> 12)); utf8[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F)); utf8[2] = (unsigned char)(0x80 | (c & 0x3F)); len = 3; }
                else { utf8[0] = (unsigned char)(0xF0 | (c >> 18)); utf8[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F)); utf8[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F)); utf8[3] = (unsigned char)(0x80 | (c & 0x3F)); len = 4; }
                for (int i = 0; i < len; i++) { if (out && n + 1 < cap) out[n] = (char)utf8[i]; n++; }
                continue;
            }
            default: return NULL;
            }
        }
        if (out && n + 1 < cap) out[n] = (char)c;
        n++;
    }
    return NULL;
}

static inline const char *agh__string(const char *p, const char *end, char *out, size_t cap) {
    return agh__string_n(p, end, out, cap, NULL);
}

/* Skips any JSON value at p. Returns the position after it, or NULL if malformed. */
static inline const char *agh__skip(const char *p, const char *end, int depth) {
    p = agh__ws(p, end);
    if (p >= end || depth > 64) return NULL;
    if (*p == '"') return agh__string(p, end, NULL, 0);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = agh__ws(p + 1, end);
        if (p < end && *p == close) return p + 1;
        while (p && p < end) {
            if (close == '}') {
                p = agh__string(agh__ws(p, end), end, NULL, 0);
                if (!p) return NULL;
                p = agh__ws(p, end);
                if (p >= end || *p != ':') return NULL;
                p++;
            }
            p = agh__skip(p, end, depth + 1);
            if (!p) return NULL;
            p = agh__ws(p, end);
            if (p < end && *p == ',') { p++; continue; }
            if (p < end && *p == close) return p + 1;
            return NULL;
        }
        return NULL;
    }
    const char *start = p;
    while (p < end && (strchr("+-.0123456789eE", *p) || (*p >= 'a' && *p <= 'z'))) p++;
    return p > start ? p : NULL;
}

/* Reads the run_id value at p into out->run_id, as the Swift SDK takes it: a string of agh_run_id_valid, or an
 * integer literal from 0 to 2^53 - 1 (Studio's ids), taken as its decimal digits; null is absent. Anything else
 * (too long, another character, "", a fraction, an exponent, a negative number, true, an object) sets
 * out->run_id_invalid and leaves out->run_id "". Returns the position after the value, or NULL if malformed. */
static inline const char *agh__run_id(const char *p, const char *end, agh_client_frame *out) {
    if (p < end && *p == '"') {
        char id[AGH_RUN_ID_MAX + 2]; /* one byte more than an id: a longer string is seen, never cut to fit */
        size_t n = 0;
        p = agh__string_n(p, end, id, sizeof id, &n);
        if (p && agh_run_id_valid(id, n)) memcpy(out->run_id, id, n + 1);
        else if (p) out->run_id_invalid = 1;
        return p;
    }
    if (end - p >= 4 && !memcmp(p, "null", 4)) return p + 4;
    const char *digits = p;
    if (p < end && *p == '-') p++; /* -0 reads as 0, as JSONSerialization reads it; any other negative is refused */
    const char *first = p;
    unsigned long long value = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (value < (1ULL << 53)) value = value * 10 + (unsigned long long)(*p - '0');
        p++;
    }
    int integer = p > first && (p == end || (*p != '.' && *p != 'e' && *p != 'E')) &&
                  (first[0] != '0' || p - first == 1) && (digits == first || value == 0);
    if (!integer || value >= (1ULL << 53)) {
        out->run_id_invalid = 1;
        return agh__skip(digits, end, 0);
    }
    snprintf(out->run_id, sizeof out->run_id, "%llu", value);
    return p;
}

/* Reads one client frame. Returns its type (out->type); AGH_FRAME_INVALID_JSON if it is not a JSON object. A
 * run_id that is not one (out->run_id_invalid) does not change the type: the caller answers invalid_frame. */
static inline agh_frame_type agh_parse_client_frame(const uint8_t *json, size_t len, agh_client_frame *out) {
    const char *p = (const char *)json, *end = p + len;
    memset(out, 0, sizeof *out);
    out->last_seq = -1;
    out->type = AGH_FRAME_INVALID_JSON;
    p = agh__ws(p, end);
    if (p >= end || *p != '{') return out->type;
    p = agh__ws(p + 1, end);
    while (p < end && *p != '}') {
        char key[32];
        p = agh__string(p, end, key, sizeof key);
        if (!p) return out->type;
        p = agh__ws(p, end);
        if (p >= end || *p != ':') return out->type;
        p = agh__ws(p + 1, end);
        char *target = NULL;
        size_t cap = 0;
        if (!strcmp(key, "type")) { target = out->type_name; cap = sizeof out->type_name; }
        else if (!strcmp(key, "task")) { target = out->task; cap = sizeof out->task; }
        else if (!strcmp(key, "response")) { target = out->response; cap = sizeof out->response; }
        else if (!strcmp(key, "request_id")) { target = out->request_id; cap = sizeof out->request_id; }
        else if (!strcmp(key, "reason")) { target = out->reason; cap = sizeof out->reason; }
        else if (!strcmp(key, "resume_token")) { target = out->resume_token; cap = sizeof out->resume_token; }
        if (!strcmp(key, "run_id")) {
            p = agh__run_id(p, end, out);
        } else if (target && p < end && *p == '"') {
            p = agh__string(p, end, target, cap);
            if (target == out->task) out->task_is_text = 1;
        } else if (!strcmp(key, "last_seq") && p < end && *p >= '0' && *p <= '9') {
            char *stop;
            out->last_seq = strtoll(p, &stop, 10);
            p = stop;
        } else {
            p = agh__skip(p, end, 0);
        }
        if (!p) return out->type;
        p = agh__ws(p, end);
        if (p < end && *p == ',') p = agh__ws(p + 1, end);
        else if (p >= end || *p != '}') return out->type;
    }
    if (p >= end) return out->type;
    if (!strcmp(out->type_name, "start")) out->type = AGH_FRAME_START;
    else if (!strcmp(out->type_name, "stop")) out->type = AGH_FRAME_STOP;
    else if (!strcmp(out->type_name, "input_response")) out->type = AGH_FRAME_INPUT_RESPONSE;
    else if (!strcmp(out->type_name, "ping")) out->type = AGH_FRAME_PING;
    else if (!strcmp(out->type_name, "resume")) out->type = AGH_FRAME_RESUME;
    else out->type = AGH_FRAME_UNKNOWN;
    return out->type;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Runs on the host's run log (ABI 1.1, see RUN LOG in agenthost_plugin.h). A run appends every frame to its log
 * (the writer handle from log_create, key = the run id, secret = the resume token for anonymous starters); a
 * socket streams a run by opening its log and watching it, the starter's socket too, so a live stream and a
 * resumed one (on any socket, plugin generation or worker, after a host restart) are the same bytes. A client's
 * `stop` for a run written elsewhere reaches its writer as a signal: the same JSON object as the client's frame,
 * so the writer reads it with agh_parse_client_frame.
 * ------------------------------------------------------------------------------------------------------------- */

/* Whether `host` offers the run log: ABI 1.1 and a table long enough to hold it. */
static inline int agh_host_has_run_log(const agenthost_host_api_v1 *host) {
    return host->abi_minor >= 1 &&
           host->struct_size >= offsetof(agenthost_host_api_v1, log_release) + sizeof(void *) && host->log_release;
}

/* A fresh resume token (128 random bits as 32 hex digits and a NUL): the secret of an anonymous run's log. */
static inline int agh_new_token(char out[33]) {
    uint8_t bytes[16];
    if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes) return -1;
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", bytes[i]);
    return 0;
}

/* Appends `frame` to the run's log through the writer handle. The run numbered it `seq`; the host numbers
 * entries itself, and with one writer the two agree: anything else is reported as AGENTHOST_ERROR. Returns the
 * host's status otherwise (CLOSED: the log has ended; BAD_ARGUMENT: over the host's entry limit). */
static inline agenthost_status_t agh_log_append_frame(const agenthost_host_api_v1 *host, agenthost_log_t log,
                                                      const agh_buf *frame, uint64_t seq) {
    if (frame->failed) return AGENTHOST_BAD_ARGUMENT;
    uint64_t appended = 0;
    agenthost_status_t status = host->log_append(log, (const uint8_t *)frame->data, frame->len, &appended);
    if (status == AGENTHOST_OK && appended != seq) return AGENTHOST_ERROR;
    return status;
}

/* Streams the run `run_id` to `conn` from the frame after `last_seq`: opens its log (`secret`: the resume token
 * of an anonymous run, or NULL), checks that the host still keeps every frame after last_seq, and watches it
 * (`data` comes back in every event of the watch). On success returns NULL with *reader (release it when the
 * stream ends) and *watch_id set. Otherwise returns the error code to send the client: "invalid_frame" (not a
 * run id, see agh_run_id_valid), "unknown_run" (no such run, or not this client's), "resume_gap" (*first_seq:
 * the oldest kept), or "unavailable". */
static inline const char *agh_follow_run(const agenthost_host_api_v1 *host, agenthost_conn_t conn, const char *run_id,
                                         const char *secret, uint64_t last_seq, void *data, agenthost_log_t *reader,
                                         uint64_t *watch_id, uint64_t *first_seq) {
    if (!run_id || !agh_run_id_valid(run_id, strlen(run_id))) return "invalid_frame";
    size_t secret_len = secret ? strlen(secret) : 0;
    agenthost_status_t status = host->log_open(conn, (const uint8_t *)run_id, strlen(run_id), (const uint8_t *)secret,
                                               secret_len, reader);
    if (status == AGENTHOST_UNAVAILABLE) return "unavailable";
    if (status != AGENTHOST_OK) return "unknown_run";
    agenthost_log_info_v1 info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (host->log_info(*reader, &info) != AGENTHOST_OK) { host->log_release(*reader); return "unavailable"; }
    if (info.first_seq > last_seq + 1) {
        *first_seq = info.first_seq;
        host->log_release(*reader);
        return "resume_gap";
    }
    if (host->log_watch(conn, *reader, last_seq, data, watch_id) != AGENTHOST_OK) {
        host->log_release(*reader);
        return "unknown_run";
    }
    return NULL;
}

/* A LOG_ENTRY of a watch that streams to `conn`: sends the frame as it is in the log. */
static inline agenthost_status_t agh_forward_entry(const agenthost_host_api_v1 *host, agenthost_conn_t conn,
                                                   const agenthost_event_v1 *event) {
    return host->send(conn, AGENTHOST_MESSAGE_TEXT, event->log_bytes.ptr, event->log_bytes.len);
}

/* Sends a run's writer the client's `stop` (reason may be NULL or ""): NOT_FOUND if the run has ended. */
static inline agenthost_status_t agh_signal_stop(const agenthost_host_api_v1 *host, agenthost_log_t log,
                                                 const char *reason) {
    agh_buf signal;
    agh_buf_init(&signal);
    agh_buf_puts(&signal, "{\"type\":\"stop\"");
    if (reason && reason[0]) { agh_buf_puts(&signal, ",\"reason\":"); agh_buf_json_cstring(&signal, reason); }
    agh_buf_puts(&signal, "}");
    agenthost_status_t status =
        signal.failed ? AGENTHOST_BAD_ARGUMENT : host->log_signal(log, (const uint8_t *)signal.data, signal.len);
    agh_buf_free(&signal);
    return status;
}

#ifdef __cplusplus
}
#endif

#endif /* AGENTHOST_AGENT_H */
