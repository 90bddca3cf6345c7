/*
 * test_acd_strategy.c - each distribution strategy offers to the agent its
 * definition says, in the order it says, across ties and priority tiers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "acd/strategy.h"

static uint64_t seq_rand(void *arg)
{
    uint64_t *v = arg;
    return (*v)++;
}

static int pick1(enum acd_strategy st, const struct acd_candidate *c, int n, int rr_last,
                 uint64_t *r)
{
    int out[16];
    uint64_t dummy = 0;
    int k = acd_pick(st, c, n, rr_last, seq_rand, r ? r : &dummy, out, 16);
    assert_int_equal(k, 1);
    return out[0];
}

/* Three agents, all priority 10, list order 0..2. */
static void base3(struct acd_candidate c[3])
{
    memset(c, 0, sizeof(struct acd_candidate) * 3);
    for (int i = 0; i < 3; i++) {
        c[i].user_id = 100 + i;
        c[i].priority = 10;
        c[i].order = i;
        c[i].idle_since_ms = 1000;
        c[i].logged_in_ms = 3600000;
    }
}

static void acd_longest_idle_picks_the_earliest_free(void **state)
{
    struct acd_candidate c[3];
    base3(c);
    c[0].idle_since_ms = 5000;
    c[1].idle_since_ms = 2000; /* free since the earliest time */
    c[2].idle_since_ms = 3000;
    assert_int_equal(pick1(ACD_LONGEST_IDLE, c, 3, -1, NULL), 1);
}

static void acd_longest_idle_tie_goes_to_list_order(void **state)
{
    struct acd_candidate c[3];
    base3(c);
    c[2].order = 0;
    c[0].order = 2;
    assert_int_equal(pick1(ACD_LONGEST_IDLE, c, 3, -1, NULL), 2);
}

static void acd_priority_tier_comes_first(void **state)
{
    struct acd_candidate c[3];
    base3(c);
    c[0].priority = 20;
    c[0].idle_since_ms = 1; /* idle longest but in the lower tier */
    c[1].priority = 10;
    c[2].priority = 10;
    c[2].idle_since_ms = 500;
    assert_int_equal(pick1(ACD_LONGEST_IDLE, c, 3, -1, NULL), 2);
}

static void acd_least_loaded_uses_talk_over_login_time(void **state)
{
    struct acd_candidate c[3];
    base3(c);
    c[0].talk_ms = 600000, c[0].logged_in_ms = 3600000; /* 1/6 */
    c[1].talk_ms = 900000, c[1].logged_in_ms = 7200000; /* 1/8: least loaded */
    c[2].talk_ms = 300000, c[2].logged_in_ms = 1200000; /* 1/4 */
    assert_int_equal(pick1(ACD_LEAST_LOADED, c, 3, -1, NULL), 1);
}

static void acd_fewest_calls_picks_fewest(void **state)
{
    struct acd_candidate c[3];
    base3(c);
    c[0].calls = 5, c[1].calls = 3, c[2].calls = 3;
    assert_int_equal(pick1(ACD_FEWEST_CALLS, c, 3, -1, NULL), 1); /* tie 1,2 -> list order */
}

static void acd_round_robin_continues_after_last(void **state)
{
    struct acd_candidate c[3];
    base3(c);
    assert_int_equal(pick1(ACD_ROUND_ROBIN, c, 3, -1, NULL), 0);
    assert_int_equal(pick1(ACD_ROUND_ROBIN, c, 3, 0, NULL), 1);
    assert_int_equal(pick1(ACD_ROUND_ROBIN, c, 3, 1, NULL), 2);
    assert_int_equal(pick1(ACD_ROUND_ROBIN, c, 3, 2, NULL), 0); /* wraps */
    /* the next one is busy (absent from the candidates): skip to the one after */
    struct acd_candidate two[2] = {c[0], c[2]};
    assert_int_equal(pick1(ACD_ROUND_ROBIN, two, 2, 0, NULL), 1);
}

static void acd_linear_always_from_the_top(void **state)
{
    struct acd_candidate c[3];
    base3(c);
    c[0].calls = 100;
    c[0].idle_since_ms = 99999;
    assert_int_equal(pick1(ACD_LINEAR, c, 3, 1, NULL), 0);
}

static void acd_random_covers_everyone(void **state)
{
    struct acd_candidate c[3];
    base3(c);
    int seen[3] = {0};
    uint64_t r = 0;
    for (int i = 0; i < 30; i++)
        seen[pick1(ACD_RANDOM, c, 3, -1, &r)]++;
    assert_true(seen[0] > 0 && seen[1] > 0 && seen[2] > 0);
}

static void acd_weighted_random_prefers_low_penalty(void **state)
{
    struct acd_candidate c[3];
    base3(c); /* only the first two are used */
    c[0].penalty = 0;
    c[1].penalty = 9; /* weight 1/10 of the first */
    int seen[2] = {0};
    uint64_t r = 12345;
    for (int i = 0; i < 11000; i += 1) {
        int out[1];
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t v = r >> 11;
        acd_pick(ACD_WEIGHTED_RANDOM, c, 2, -1, seq_rand, &v, out, 1);
        seen[out[0]]++;
    }
    assert_true(seen[0] > 8 * seen[1]);
    assert_true(seen[1] > 0);
}

static void acd_ring_all_returns_top_tier_in_order(void **state)
{
    struct acd_candidate c[3];
    base3(c);
    c[0].order = 2, c[1].order = 0, c[2].order = 1;
    c[0].priority = 10, c[1].priority = 10, c[2].priority = 30;
    int out[8];
    int k = acd_pick(ACD_RING_ALL, c, 3, -1, NULL, NULL, out, 8);
    assert_int_equal(k, 2);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 0);
}

static void acd_not_set_offers_nobody(void **state)
{
    struct acd_candidate c[3];
    base3(c);
    int out[8];
    assert_int_equal(acd_pick(ACD_NOT_SET, c, 3, -1, NULL, NULL, out, 8), 0);
    assert_int_equal(acd_pick(ACD_LONGEST_IDLE, c, 0, -1, NULL, NULL, out, 8), 0);
}

static void acd_strategy_names_round_trip(void **state)
{
    for (int i = 0; i < ACD_STRATEGY_COUNT; i++) {
        enum acd_strategy s;
        assert_int_equal(acd_strategy_parse(acd_strategy_name((enum acd_strategy)i), &s), 0);
        assert_int_equal((int)s, i);
    }
    enum acd_strategy s;
    assert_int_not_equal(acd_strategy_parse("fastest", &s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(acd_longest_idle_picks_the_earliest_free),
        cmocka_unit_test(acd_longest_idle_tie_goes_to_list_order),
        cmocka_unit_test(acd_priority_tier_comes_first),
        cmocka_unit_test(acd_least_loaded_uses_talk_over_login_time),
        cmocka_unit_test(acd_fewest_calls_picks_fewest),
        cmocka_unit_test(acd_round_robin_continues_after_last),
        cmocka_unit_test(acd_linear_always_from_the_top),
        cmocka_unit_test(acd_random_covers_everyone),
        cmocka_unit_test(acd_weighted_random_prefers_low_penalty),
        cmocka_unit_test(acd_ring_all_returns_top_tier_in_order),
        cmocka_unit_test(acd_not_set_offers_nobody),
        cmocka_unit_test(acd_strategy_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
