/* strmap: string -> int hash map (open addressing, FNV-1a).
 * Keys are copied into an arena owned by the map; lookups take (ptr, len) so
 * callers can probe with substrings without copying. */
#ifndef PROBE_STRMAP_H
#define PROBE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    struct strmap_slot *slots; /* owned */
    size_t cap, n;
    char **chunks; /* key arena; owned */
    size_t n_chunks, chunk_used, chunk_cap;
} strmap_t;

void strmap_init(strmap_t *m);
void strmap_free(strmap_t *m);
/* Inserts or overwrites; returns 0, or -1 (err set) when out of memory. */
int strmap_put(strmap_t *m, const char *key, size_t len, int value);
/* Value for key, or DEFAULT_VALUE when absent. */
int strmap_get(const strmap_t *m, const char *key, size_t len, int default_value);

#endif
