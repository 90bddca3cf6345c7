/*
 * idmap.c - a small hash map from 64-bit ids to pointers, for the tables
 * the SIP edge keys by leg, request, ping or user id. Not thread-safe: each
 * map belongs to one thread. The map never owns the values.
 */
#include "sip/sip_int.h"
#include "base/cw.h"

#include <stdlib.h>
#include <string.h>

struct idmap_ent {
    struct idmap_ent *next;
    uint64_t key;
    void *val;
};

static size_t slot(const struct idmap *m, uint64_t k)
{
    return (size_t)((k * 0x9E3779B97F4A7C15ull) >> 32) & (m->nb - 1);
}

static void grow(struct idmap *m)
{
    size_t nb = m->nb ? m->nb * 2 : 64;
    struct idmap_ent **b = cw_calloc(nb, sizeof *b);
    struct idmap old = *m;
    m->b = b;
    m->nb = nb;
    for (size_t i = 0; i < old.nb; i++) {
        struct idmap_ent *e = old.b[i];
        while (e) {
            struct idmap_ent *n = e->next;
            size_t s = slot(m, e->key);
            e->next = m->b[s];
            m->b[s] = e;
            e = n;
        }
    }
    free(old.b);
}

void *idmap_get(const struct idmap *m, uint64_t key)
{
    if (!m->nb) return NULL;
    for (struct idmap_ent *e = m->b[slot(m, key)]; e; e = e->next)
        if (e->key == key) return e->val;
    return NULL;
}

void idmap_put(struct idmap *m, uint64_t key, void *val)
{
    if (m->n + 1 > m->nb) grow(m);
    size_t s = slot(m, key);
    for (struct idmap_ent *e = m->b[s]; e; e = e->next)
        if (e->key == key) {
            e->val = val;
            return;
        }
    struct idmap_ent *e = cw_malloc(sizeof *e);
    e->key = key;
    e->val = val;
    e->next = m->b[s];
    m->b[s] = e;
    m->n++;
}

void *idmap_del(struct idmap *m, uint64_t key)
{
    if (!m->nb) return NULL;
    struct idmap_ent **pp = &m->b[slot(m, key)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->key == key) {
            struct idmap_ent *e = *pp;
            void *v = e->val;
            *pp = e->next;
            free(e);
            m->n--;
            return v;
        }
    return NULL;
}

size_t idmap_keys(const struct idmap *m, uint64_t **out)
{
    *out = cw_calloc(m->n ? m->n : 1, sizeof **out);
    size_t k = 0;
    for (size_t i = 0; i < m->nb; i++)
        for (struct idmap_ent *e = m->b[i]; e; e = e->next)
            (*out)[k++] = e->key;
    return k;
}

void idmap_clear(struct idmap *m, void (*free_val)(void *))
{
    for (size_t i = 0; i < m->nb; i++) {
        struct idmap_ent *e = m->b[i];
        while (e) {
            struct idmap_ent *n = e->next;
            if (free_val) free_val(e->val);
            free(e);
            e = n;
        }
    }
    free(m->b);
    memset(m, 0, sizeof *m);
}
