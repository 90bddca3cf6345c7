/*
 * json_text.c - the JSON text of a reply, written straight into a buffer.
 *
 * The same bytes json_dumps(JSON_COMPACT) writes (members in insertion
 * order, jansson's escapes), without its per-container loop check and
 * intermediate copies, which cost more than building a large list page.
 * Replies are trees the core builds; a value nested deeper than MAX_DEPTH
 * (or a cycle) is refused. Writes only; never parses.
 */
#include "http/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 512

static void put_string(cw_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *run = s, *end = s + len;
    cw_buf_append(b, "\"", 1);
    for (const char *p = s; p < end; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch >= 0x20 && ch != '"' && ch != '\\') continue;
        cw_buf_append(b, run, (size_t)(p - run));
        run = p + 1;
        switch (ch) {
        case '"':
            cw_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            cw_buf_append(b, "\\\\", 2);
            break;
        case '\b':
            cw_buf_append(b, "\\b", 2);
            break;
        case '\f':
            cw_buf_append(b, "\\f", 2);
            break;
        case '\n':
            cw_buf_append(b, "\\n", 2);
            break;
        case '\r':
            cw_buf_append(b, "\\r", 2);
            break;
        case '\t':
            cw_buf_append(b, "\\t", 2);
            break;
        default: {
            char seq[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            cw_buf_append(b, seq, sizeof seq);
        }
        }
    }
    cw_buf_append(b, run, (size_t)(end - run));
    cw_buf_append(b, "\"", 1);
}

static int put_value(cw_buf *b, json_t *v, int depth)
{
    if (depth > MAX_DEPTH) return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *m;
        bool first = true;
        cw_buf_append(b, "{", 1);
        json_object_foreach(v, key, m)
        {
            if (!first) cw_buf_append(b, ",", 1);
            first = false;
            put_string(b, key, strlen(key));
            cw_buf_append(b, ":", 1);
            if (put_value(b, m, depth + 1)) return -1;
        }
        cw_buf_append(b, "}", 1);
        return 0;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *m;
        cw_buf_append(b, "[", 1);
        json_array_foreach(v, i, m)
        {
            if (i) cw_buf_append(b, ",", 1);
            if (put_value(b, m, depth + 1)) return -1;
        }
        cw_buf_append(b, "]", 1);
        return 0;
    }
    case JSON_STRING:
        put_string(b, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER: {
        char num[24];
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        cw_buf_append(b, num, (size_t)n);
        return 0;
    }
    case JSON_REAL: { /* rare in replies: jansson's own shortest round-trip form */
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s) return -1;
        cw_buf_puts(b, s);
        free(s);
        return 0;
    }
    case JSON_TRUE:
        cw_buf_append(b, "true", 4);
        return 0;
    case JSON_FALSE:
        cw_buf_append(b, "false", 5);
        return 0;
    case JSON_NULL:
        cw_buf_append(b, "null", 4);
        return 0;
    }
    return -1;
}

int http_json_text(cw_buf *out, json_t *json)
{
    size_t start = out->len;
    if (!json || put_value(out, json, 0)) {
        out->len = start;
        if (out->data) out->data[start] = '\0';
        return CW_EINVAL;
    }
    return CW_OK;
}
