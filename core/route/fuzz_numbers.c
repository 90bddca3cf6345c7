/*
 * fuzz_numbers.c - libFuzzer target for what a caller dials: the number
 * class, the restriction check every outbound call passes, and the
 * normal form prefixes and classifiers are matched against.
 */
#include "base/cw.h"
#include "route/numbers.h"
#include "route/route.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *dialled = cw_strndup((const char *)data, size);
    enum number_class c = route_classify(dialled);
    if (c > NUM_INTERNATIONAL) abort();
    if (!route_class_name(c)) abort();
    static const char *const levels[] = {"none", "no_international",
                                         "no_international_longdistance", "internal_only"};
    for (size_t i = 0; i < CW_ARRAY_LEN(levels); i++) {
        bool ok = route_restriction_allows(levels[i], c);
        /* an invalid number is never dialled; an emergency number always is */
        if ((c == NUM_INVALID && ok) || (c == NUM_EMERGENCY && !ok)) abort();
    }
    char norm[32];
    route_number_norm(dialled, norm, sizeof norm);
    if (strnlen(norm, sizeof norm) == sizeof norm) abort();
    for (const char *p = norm; *p; p++)
        if (*p < '0' || *p > '9') abort();
    free(dialled);
    return 0;
}
