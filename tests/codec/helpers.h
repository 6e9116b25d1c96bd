/* tests/codec/helpers.h - what the gRPC methods do with the core's results, for codec tests. */
#ifndef TESTS_CODEC_HELPERS_H
#define TESTS_CODEC_HELPERS_H

#include "codec/codec.h"
#include "core/core_int.h"

/* Predict's output as the method builds it: the core's tensor, then its TensorProto form. */
static inline int tensor_from_cells(const catalog_feature_t *f, const core_cell_t *cells,
                                    size_t n_rows, bool zero_missing, base_arena_t *a,
                                    Tensorflow__TensorProto *out, size_t *bad_row, char *why,
                                    size_t why_cap)
{
    core_tensor_t t;
    int rc = core__tensor_from_cells(f, cells, n_rows, zero_missing, a, &t, bad_row, why, why_cap);
    return rc == 0 ? codec_tensor_from_core(&t, a, out) : rc;
}

/* Column names pre-encoded as a GetOnlineFeatures method passes them. Returns: the bytes, or
 * NULL. */
static inline const uint8_t *encode_names(base_arena_t *a, const char *const *names,
                                          const size_t *lens, size_t n, size_t *len)
{
    const uint8_t *out = NULL;
    return base_wire_strings(a, names, lens, n, &out, len) == 0 ? out : NULL;
}

#endif /* TESTS_CODEC_HELPERS_H */
