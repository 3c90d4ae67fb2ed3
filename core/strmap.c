/* strmap: open-addressing hash map from byte strings to ints (see strmap.h). */
#include "strmap.h"

#include "err.h"

#include <stdlib.h>
#include <string.h>

struct strmap_slot {
    const char *key; /* into the arena; NULL = empty */
    uint32_t len;
    uint32_t hash;
    int value;
};

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

void strmap_init(strmap_t *m) { memset(m, 0, sizeof *m); }

void strmap_free(strmap_t *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_chunks; i++)
        free(m->chunks[i]);
    free(m->chunks);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static const char *arena_copy(strmap_t *m, const char *s, size_t n) {
    if (m->n_chunks == 0 || m->chunk_used + n + 1 > m->chunk_cap) {
        size_t cap = n + 1 > 65536 ? n + 1 : 65536;
        char **c = realloc(m->chunks, (m->n_chunks + 1) * sizeof *c);
        if (!c) return NULL;
        m->chunks = c;
        if (!(c[m->n_chunks] = malloc(cap))) return NULL;
        m->n_chunks++;
        m->chunk_used = 0;
        m->chunk_cap = cap;
    }
    char *p = m->chunks[m->n_chunks - 1] + m->chunk_used;
    memcpy(p, s, n);
    p[n] = '\0';
    m->chunk_used += n + 1;
    return p;
}

static int grow(strmap_t *m) {
    size_t cap = m->cap ? m->cap * 2 : 1024;
    struct strmap_slot *s = calloc(cap, sizeof *s);
    if (!s) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key) continue;
        size_t j = m->slots[i].hash & (cap - 1);
        while (s[j].key)
            j = (j + 1) & (cap - 1);
        s[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = s;
    m->cap = cap;
    return 0;
}

int strmap_put(strmap_t *m, const char *key, size_t len, int value) {
    if ((m->n + 1) * 2 > m->cap && grow(m)) return err_set("out of memory");
    uint32_t h = hash_bytes(key, len);
    size_t j = h & (m->cap - 1);
    while (m->slots[j].key) {
        if (m->slots[j].hash == h && m->slots[j].len == len && !memcmp(m->slots[j].key, key, len)) {
            m->slots[j].value = value;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    const char *k = arena_copy(m, key, len);
    if (!k) return err_set("out of memory");
    m->slots[j] = (struct strmap_slot){k, (uint32_t)len, h, value};
    m->n++;
    return 0;
}

int strmap_get(const strmap_t *m, const char *key, size_t len, int default_value) {
    if (!m->cap) return default_value;
    uint32_t h = hash_bytes(key, len);
    size_t j = h & (m->cap - 1);
    while (m->slots[j].key) {
        if (m->slots[j].hash == h && m->slots[j].len == len && !memcmp(m->slots[j].key, key, len))
            return m->slots[j].value;
        j = (j + 1) & (m->cap - 1);
    }
    return default_value;
}
