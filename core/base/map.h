/*
 * map.h - an open-addressing hash map from uint64_t keys to pointers.
 * Key 0 is reserved (never a valid key). Not thread-safe: one owner.
 */
#ifndef CW_MAP_H
#define CW_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct cw_map {
    uint64_t *keys;
    void **vals;
    size_t cap, len, tombs;
} cw_map;

void cw_map_init(cw_map *m);
void cw_map_free(cw_map *m);
void *cw_map_get(const cw_map *m, uint64_t key);
void cw_map_put(cw_map *m, uint64_t key, void *val); /* replaces */
void *cw_map_del(cw_map *m, uint64_t key);           /* returns the old value */

/* String keys hashed to 64 bits (collisions are checked by the caller). */
uint64_t cw_hash_str(const char *s);

#endif
