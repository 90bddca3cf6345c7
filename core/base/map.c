/*
 * map.c - linear probing with tombstones; grows at 70 % load.
 */
#include "base/map.h"
#include "base/cw.h"

#include <stdlib.h>
#include <string.h>

#define TOMB UINT64_MAX

static size_t slot(uint64_t k, size_t cap)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k & (cap - 1);
}

void cw_map_init(cw_map *m)
{
    memset(m, 0, sizeof *m);
}

void cw_map_free(cw_map *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static void grow(cw_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    if (m->cap && m->len * 2 < m->cap) ncap = m->cap; /* mostly tombstones: rehash in place */
    uint64_t *ok = m->keys;
    void **ov = m->vals;
    size_t ocap = m->cap;
    m->keys = cw_calloc(ncap, sizeof *m->keys);
    m->vals = cw_calloc(ncap, sizeof *m->vals);
    m->cap = ncap;
    m->len = m->tombs = 0;
    for (size_t i = 0; i < ocap; i++)
        if (ok[i] && ok[i] != TOMB) cw_map_put(m, ok[i], ov[i]);
    free(ok);
    free(ov);
}

void *cw_map_get(const cw_map *m, uint64_t key)
{
    if (!m->cap || !key || key == TOMB) return NULL;
    for (size_t i = slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key) return m->vals[i];
        if (m->keys[i] == 0) return NULL;
    }
}

void cw_map_put(cw_map *m, uint64_t key, void *val)
{
    if ((m->len + m->tombs + 1) * 10 >= m->cap * 7) grow(m);
    size_t tomb = (size_t)-1;
    for (size_t i = slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key) {
            m->vals[i] = val;
            return;
        }
        if (m->keys[i] == TOMB && tomb == (size_t)-1) tomb = i;
        if (m->keys[i] == 0) {
            if (tomb != (size_t)-1) {
                i = tomb;
                m->tombs--;
            }
            m->keys[i] = key;
            m->vals[i] = val;
            m->len++;
            return;
        }
    }
}

void *cw_map_del(cw_map *m, uint64_t key)
{
    if (!m->cap || !key || key == TOMB) return NULL;
    for (size_t i = slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key) {
            void *v = m->vals[i];
            m->keys[i] = TOMB;
            m->vals[i] = NULL;
            m->len--;
            m->tombs++;
            return v;
        }
        if (m->keys[i] == 0) return NULL;
    }
}

uint64_t cw_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h ? h : 1;
}
