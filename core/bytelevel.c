/* bytelevel: GPT-2's byte <-> printable-unicode map (see bytelevel.h). */
#include "bytelevel.h"

/* GPT-2 keeps these bytes as themselves: printable ASCII and printable
 * Latin-1 except the soft hyphen 0xAD. */
static int byte_is_kept(int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

void bytelevel_init(bytelevel_t *m) {
    int next = 256;
    for (int c = 0; c < BYTELEVEL_MAX_CP; c++)
        m->byte[c] = -1;
    for (int b = 0; b < 256; b++) {
        int cp = byte_is_kept(b) ? b : next++;
        m->cp[b] = (uint16_t)cp;
        m->byte[cp] = (int16_t)b;
        if (cp < 0x80) {
            m->utf8[b][0] = (char)cp;
            m->utf8_len[b] = 1;
        } else {
            m->utf8[b][0] = (char)(0xC0 | (cp >> 6));
            m->utf8[b][1] = (char)(0x80 | (cp & 0x3F));
            m->utf8_len[b] = 2;
        }
    }
}
