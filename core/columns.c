/* core/columns.c - column-wise request input: its shape checks and lookups by name. */
#include <errno.h>
#include <string.h>

#include "core/core_int.h"

/*
 * Reads and writes are column-wise: one column per join key (and, for writes, per feature), each
 * with a value per row. Every transport checks the shape here before it converts a single value,
 * so an oversized request costs no more than its decoding, and the messages are the same over
 * gRPC and HTTP.
 */

int core_columns_shape(core_ctx_t *ctx, const char *what, size_t n, const char *const *keys,
                       const size_t *lens, const core_columns_limits_t *lim, size_t *rows_out)
{
    if (n > lim->max_cols)
        return core_fail(ctx, -E2BIG, "request has %zu %s columns; the limit is %zu (%s)", n, what,
                         lim->max_cols, lim->max_cols_why);
    size_t rows = n > 0 ? lens[0] : 0;
    for (size_t i = 0; i < n; i++) {
        if (keys[i][0] == '\0')
            return core_fail(ctx, -EINVAL, "%s column with an empty name", what);
        if (lens[i] != rows)
            return core_fail(ctx, -EINVAL,
                             "%s columns have different lengths: '%s' has %zu values, '%s' "
                             "has %zu",
                             what, keys[0], rows, keys[i], lens[i]);
    }
    if (rows > lim->max_rows)
        return core_fail(ctx, -E2BIG, "request has %zu %s rows; the limit is %zu (%s)", rows, what,
                         lim->max_rows, lim->max_rows_why);
    size_t first = 0, second = 0;
    int dup = base_find_duplicate(ctx->arena, keys, n, &first, &second);
    if (dup < 0)
        return core_fail(ctx, -ENOMEM, "out of memory");
    if (dup > 0)
        return core_fail(ctx, -EINVAL, "%s column '%s' given twice", what, keys[second]);
    *rows_out = rows;
    return 0;
}

int core_columns_find(const core_columns_t *cols, const char *name)
{
    for (size_t i = 0; i < cols->n_cols; i++) {
        if (strcmp(cols->names[i], name) == 0)
            return (int)i;
    }
    return -1;
}

core_columns_limits_t core_entity_limits(const core_ctx_t *ctx)
{
    return (core_columns_limits_t){CORE_MAX_ENTITY_COLUMNS, "entity columns per read",
                                   ctx->limits->max_entities, "--max-entities"};
}
