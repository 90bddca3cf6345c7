/*
 * strategy.h - how a queue chooses whom to offer a call to.
 *
 * Pure functions over a list of candidates (agents that are free to take
 * the call right now), so each strategy is tested on its own with a fake
 * clock and a fake random source. Priority tiers apply first: only the
 * candidates with the lowest priority value are considered (seed 001
 * §8.1.1: lower value = higher priority; equal priority ring together
 * under ring-all).
 */
#ifndef CW_ACD_STRATEGY_H
#define CW_ACD_STRATEGY_H

#include <stdint.h>

enum acd_strategy {
    ACD_NOT_SET = 0, /* no distribution: the group's voicemail */
    ACD_RING_ALL,    /* every free member at once */
    ACD_RANDOM,
    ACD_LONGEST_IDLE,     /* free for the longest time */
    ACD_LEAST_LOADED,     /* lowest talk time / logged-in time */
    ACD_FEWEST_CALLS,     /* fewest calls answered this session */
    ACD_ROUND_ROBIN,      /* next after the last one offered (memory) */
    ACD_LINEAR,           /* always from the top of the member list */
    ACD_WEIGHTED_RANDOM,  /* random, weight 1/(1+penalty) */
    ACD_RING_PROGRESSIVE, /* top of the list, adding the next one every few seconds */
    ACD_STRATEGY_COUNT
};

const char *acd_strategy_name(enum acd_strategy s);
int acd_strategy_parse(const char *name, enum acd_strategy *out);
/* Strategies that distribute to operators only (everything but not_set/ring_all). */
int acd_strategy_is_acd(enum acd_strategy s);

struct acd_candidate {
    int64_t user_id;
    int priority;          /* member priority: lower first */
    int penalty;           /* weighted random */
    int order;             /* position in the member list */
    int64_t idle_since_ms; /* when the agent last became free */
    int64_t calls;         /* calls answered since login */
    int64_t talk_ms;       /* talk time since login */
    int64_t logged_in_ms;  /* time logged in */
};

typedef uint64_t (*acd_rand_fn)(void *arg);

/*
 * Choose from cand[0..n): writes indexes into out (at most max) and returns
 * how many. Ring-all and ring-progressive return every candidate of the top
 * tier in ring order; the others return one. rr_last is the member order of
 * the last agent offered (round robin), -1 if none.
 */
int acd_pick(enum acd_strategy st, const struct acd_candidate *cand, int n, int rr_last,
             acd_rand_fn rnd, void *rarg, int *out, int max);

#endif
