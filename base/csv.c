/* base/csv.c - CSV fields (RFC 4180) read in place. */
#include "base/base.h"

int base_csv_field(base_csv_t *c, char **out, size_t *len)
{
    if (c->p >= c->end)
        return -1;
    char *start = c->p;
    if (*c->p == '"') {
        char *w = c->p, *r = c->p + 1;
        start = w;
        for (;;) {
            if (r >= c->end)
                return -2;
            if (*r == '"') {
                if (r + 1 < c->end && r[1] == '"') {
                    *w++ = '"';
                    r += 2;
                    continue;
                }
                r++;
                break;
            }
            if (*r == '\n')
                c->line++;
            *w++ = *r++;
        }
        *out = start;
        *len = (size_t)(w - start);
        c->p = r;
        if (c->p < c->end && *c->p == '\r')
            c->p++;
        if (c->p >= c->end)
            return 0;
        if (*c->p == ',') {
            c->p++;
            return 1;
        }
        if (*c->p == '\n') {
            c->p++;
            c->line++;
            return 0;
        }
        return -2;
    }
    c->p += base_csv_field_len(c->p, (size_t)(c->end - c->p));
    *out = start;
    *len = (size_t)(c->p - start);
    if (*len > 0 && start[*len - 1] == '\r')
        (*len)--;
    if (c->p >= c->end)
        return 0;
    if (*c->p == ',') {
        c->p++;
        return 1;
    }
    c->p++;
    c->line++;
    return 0;
}
