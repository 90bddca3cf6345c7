/*
 * test_sip_causes.c - SIP final statuses and call causes map both ways
 * (issue: busy 486, no answer 480/408, rejected 603, not found 404,
 * unavailable 503), and the outcome scripts see for each cause.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base/cw.h"
#include "call/call.h"
#include "sip/sip.h"

static const struct {
    int status;
    const char *cause;
} from_status[] = {
    {200, "normal"},    {486, "busy"},     {600, "busy"},        {480, "no_answer"},
    {408, "no_answer"}, {603, "rejected"}, {403, "rejected"},    {404, "no_route"},
    {484, "no_route"},  {604, "no_route"}, {503, "unavailable"}, {502, "unavailable"},
    {487, "cancelled"}, {488, "media"},    {606, "media"},       {500, "failed"},
    {415, "failed"},    {699, "failed"},
};

static void status_to_cause(void **state)
{
    for (size_t i = 0; i < CW_ARRAY_LEN(from_status); i++) {
        const char *got = sip_cause_name(sip_cause_from_status(from_status[i].status));
        if (strcmp(got, from_status[i].cause))
            fail_msg("%d -> %s, expected %s", from_status[i].status, got, from_status[i].cause);
    }
}

static const struct {
    enum sip_cause cause;
    int status;
} to_status[] = {
    {SIP_CAUSE_BUSY, 486},        {SIP_CAUSE_NO_ANSWER, 480},   {SIP_CAUSE_REJECTED, 603},
    {SIP_CAUSE_NO_ROUTE, 404},    {SIP_CAUSE_UNAVAILABLE, 503}, {SIP_CAUSE_MEDIA, 488},
    {SIP_CAUSE_RTP_TIMEOUT, 408}, {SIP_CAUSE_FAILED, 500},      {SIP_CAUSE_CANCELLED, 487},
    {SIP_CAUSE_NORMAL, 487},      {SIP_CAUSE_NONE, 487},
};

static void cause_to_status(void **state)
{
    for (size_t i = 0; i < CW_ARRAY_LEN(to_status); i++) {
        int got = sip_status_from_cause(to_status[i].cause);
        if (got != to_status[i].status)
            fail_msg("%s -> %d, expected %d", sip_cause_name(to_status[i].cause), got,
                     to_status[i].status);
    }
}

/* A cause the platform answers with comes back as the same cause. */
static void round_trip(void **state)
{
    for (int c = SIP_CAUSE_BUSY; c <= SIP_CAUSE_FAILED; c++) {
        if (c == SIP_CAUSE_CANCELLED || c == SIP_CAUSE_RTP_TIMEOUT) continue; /* 487, 408 */
        enum sip_cause back = sip_cause_from_status(sip_status_from_cause((enum sip_cause)c));
        if (back != (enum sip_cause)c)
            fail_msg("%s -> %d -> %s", sip_cause_name((enum sip_cause)c),
                     sip_status_from_cause((enum sip_cause)c), sip_cause_name(back));
    }
}

/* What call:bridge() tells a script: busy, no_answer, no_route, rejected. */
static void outcome_of_cause(void **state)
{
    static const struct {
        int status;
        const char *outcome;
    } t[] = {
        {486, "busy"},      {480, "no_answer"}, {408, "no_answer"},
        {603, "rejected"},  {404, "no_route"},  {503, "no_route"},
        {487, "cancelled"}, {200, "answered"},  {500, "failed"},
    };
    for (size_t i = 0; i < CW_ARRAY_LEN(t); i++) {
        const char *got =
            call_outcome_name(call_outcome_from_cause(sip_cause_from_status(t[i].status)));
        if (strcmp(got, t[i].outcome))
            fail_msg("%d -> %s, expected %s", t[i].status, got, t[i].outcome);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_to_cause),
        cmocka_unit_test(cause_to_status),
        cmocka_unit_test(round_trip),
        cmocka_unit_test(outcome_of_cause),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
