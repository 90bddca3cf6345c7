/*
 * fuzz_dialpat.c - libFuzzer target for trunk dial patterns: an admin types
 * the pattern, a caller types the number. Input: pattern, NUL, subject.
 */
#include "base/cw.h"
#include "sip/sip_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 600) return 0;
    char *text = cw_strndup((const char *)data, size);
    const char *pattern = text;
    const char *subject = memchr(text, '\0', size) ? text + strlen(text) + 1 : "sip:8123@x";
    if (subject > text + size) subject = "sip:8123@x";
    char out[64];
    int rc = dialpat_match(pattern, subject, (int)(size % 4), out, sizeof out);
    if (rc == 1 && strnlen(out, sizeof out) == sizeof out) abort();
    free(text);
    return 0;
}
