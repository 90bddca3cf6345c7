/*
 * strategy.c - the distribution strategies. No state, no clock, no I/O.
 */
#include "acd/strategy.h"
#include "base/cw.h"

#include <string.h>

static const char *names[ACD_STRATEGY_COUNT] = {
    "not_set",      "ring_all",    "random", "longest_idle",    "least_loaded",
    "fewest_calls", "round_robin", "linear", "weighted_random", "ring_progressive",
};

const char *acd_strategy_name(enum acd_strategy s)
{
    return s < ACD_STRATEGY_COUNT ? names[s] : "not_set";
}

int acd_strategy_parse(const char *name, enum acd_strategy *out)
{
    for (int i = 0; i < ACD_STRATEGY_COUNT; i++)
        if (name && !strcmp(name, names[i])) {
            *out = (enum acd_strategy)i;
            return CW_OK;
        }
    return CW_EINVAL;
}

int acd_strategy_is_acd(enum acd_strategy s)
{
    return s != ACD_NOT_SET && s != ACD_RING_ALL;
}

/* Load as talk per logged-in time, compared without division. */
static int less_loaded(const struct acd_candidate *a, const struct acd_candidate *b)
{
    /* a.talk/a.logged < b.talk/b.logged  <=>  a.talk*b.logged < b.talk*a.logged */
    __int128 l = (__int128)a->talk_ms * (b->logged_in_ms > 0 ? b->logged_in_ms : 1);
    __int128 r = (__int128)b->talk_ms * (a->logged_in_ms > 0 ? a->logged_in_ms : 1);
    return l < r;
}

/* Is a better than b under st? Ties go to the member list order. */
static int better(enum acd_strategy st, const struct acd_candidate *a,
                  const struct acd_candidate *b)
{
    switch (st) {
    case ACD_LONGEST_IDLE:
        if (a->idle_since_ms != b->idle_since_ms) return a->idle_since_ms < b->idle_since_ms;
        break;
    case ACD_LEAST_LOADED:
        if (less_loaded(a, b)) return 1;
        if (less_loaded(b, a)) return 0;
        break;
    case ACD_FEWEST_CALLS:
        if (a->calls != b->calls) return a->calls < b->calls;
        break;
    default:
        break;
    }
    return a->order < b->order;
}

int acd_pick(enum acd_strategy st, const struct acd_candidate *cand, int n, int rr_last,
             acd_rand_fn rnd, void *rarg, int *out, int max)
{
    if (n <= 0 || max <= 0 || st == ACD_NOT_SET) return 0;
    int top = cand[0].priority;
    for (int i = 1; i < n; i++)
        if (cand[i].priority < top) top = cand[i].priority;
    int tier[256], nt = 0;
    for (int i = 0; i < n && nt < 256; i++)
        if (cand[i].priority == top) tier[nt++] = i;

    if (st == ACD_RING_ALL || st == ACD_RING_PROGRESSIVE) {
        /* member list order */
        for (int i = 1; i < nt; i++)
            for (int j = i; j > 0 && cand[tier[j]].order < cand[tier[j - 1]].order; j--) {
                int t = tier[j];
                tier[j] = tier[j - 1];
                tier[j - 1] = t;
            }
        int k = CW_MIN(nt, max);
        memcpy(out, tier, sizeof(int) * (size_t)k);
        return k;
    }
    int best = tier[0];
    switch (st) {
    case ACD_RANDOM:
        best = tier[rnd(rarg) % (uint64_t)nt];
        break;
    case ACD_WEIGHTED_RANDOM: {
        /* weight = 1/(1+penalty), scaled to integers */
        uint64_t w[256], total = 0;
        for (int i = 0; i < nt; i++) {
            int p = cand[tier[i]].penalty < 0 ? 0 : cand[tier[i]].penalty;
            w[i] = 720720 / (uint64_t)(1 + p);
            total += w[i];
        }
        uint64_t r = rnd(rarg) % total;
        for (int i = 0; i < nt; i++) {
            if (r < w[i]) {
                best = tier[i];
                break;
            }
            r -= w[i];
        }
        break;
    }
    case ACD_ROUND_ROBIN: {
        /* the first member after rr_last in list order, wrapping */
        int after = -1, first = -1;
        for (int i = 0; i < nt; i++) {
            int o = cand[tier[i]].order;
            if (o > rr_last && (after < 0 || o < cand[after].order)) after = tier[i];
            if (first < 0 || o < cand[first].order) first = tier[i];
        }
        best = after >= 0 ? after : first;
        break;
    }
    default:
        for (int i = 1; i < nt; i++)
            if (better(st, &cand[tier[i]], &cand[best])) best = tier[i];
        break;
    }
    out[0] = best;
    return 1;
}
