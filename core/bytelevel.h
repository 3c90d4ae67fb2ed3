/* bytelevel: GPT-2's reversible map between the 256 byte values and 256
 * printable Unicode characters, so that byte-level BPE vocabularies can be
 * stored as text ("Ġ" = U+0120 stands for the space byte 0x20).
 *
 * The rule is the one of GPT-2's encoder.py bytes_to_unicode(): the bytes
 * '!'..'~', 0xA1..0xAC and 0xAE..0xFF map to the code point of the same
 * value; the other 68 bytes map, in increasing order, to U+0100, U+0101, ...
 * The table is computed from that rule, not pasted. */
#ifndef PROBE_BYTELEVEL_H
#define PROBE_BYTELEVEL_H

#include <stdint.h>

enum { BYTELEVEL_MAX_CP = 0x144 }; /* every mapped code point is below this */

typedef struct {
    uint16_t cp[256];               /* byte -> code point */
    char utf8[256][2];              /* byte -> UTF-8 of that code point */
    uint8_t utf8_len[256];          /* 1 or 2 */
    int16_t byte[BYTELEVEL_MAX_CP]; /* code point -> byte, or -1 */
} bytelevel_t;

/* Fills M (no allocation; M may live anywhere). */
void bytelevel_init(bytelevel_t *m);

/* Byte that code point CP stands for, or -1 when CP is not in the alphabet. */
static inline int bytelevel_byte(const bytelevel_t *m, uint32_t cp) {
    return cp < BYTELEVEL_MAX_CP ? m->byte[cp] : -1;
}

#endif
