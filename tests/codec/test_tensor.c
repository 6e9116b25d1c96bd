/* tests/codec/test_tensor.c - TensorProto entity keys in, feature tensors out (core and codec). */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "codec/codec.h"
#include "tests/codec/helpers.h"

static base_arena_t arena;

static void setup(void)
{
    base_arena_init(&arena, 4096);
}

static void teardown(void)
{
    base_arena_free(&arena);
}

TestSuite(predict_tensor, .init = setup, .fini = teardown);

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                     */

static Tensorflow__TensorShapeProto__Dim dims[2];
static Tensorflow__TensorShapeProto__Dim *dimp[2] = {&dims[0], &dims[1]};
static Tensorflow__TensorShapeProto shape;

/* A tensor of dtype with shape [d0] (d1 < 0) or [d0, d1]; values are set by the test. */
static Tensorflow__TensorProto tensor(Tensorflow__DataType dtype, int64_t d0, int64_t d1)
{
    tensorflow__tensor_shape_proto__init(&shape);
    tensorflow__tensor_shape_proto__dim__init(&dims[0]);
    tensorflow__tensor_shape_proto__dim__init(&dims[1]);
    dims[0].size = d0;
    dims[1].size = d1;
    shape.n_dim = d1 < 0 ? 1 : 2;
    shape.dim = dimp;
    Tensorflow__TensorProto t = TENSORFLOW__TENSOR_PROTO__INIT;
    t.dtype = dtype;
    t.tensor_shape = &shape;
    return t;
}

static int keys(const Tensorflow__TensorProto *t, catalog_dtype_t want, catalog_value_t **vals,
                size_t *n, char *why)
{
    return codec_tensor_to_keys(t, want, &arena, vals, n, why, 256);
}

/* A PRESENT cell holding v's wire bytes (in the arena). */
static core_cell_t cell_of(const catalog_value_t *v)
{
    size_t n = catalog_value_wire_size(v);
    uint8_t *buf = base_arena_alloc(&arena, n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(catalog_value_encode(v, buf, n + 1), (int)n);
    return (core_cell_t){buf, (uint32_t)n, STORE_STATUS_PRESENT, 1};
}

static const core_cell_t missing = {NULL, 0, STORE_STATUS_NOT_FOUND, 0};

static catalog_feature_t feature(catalog_dtype_t dtype)
{
    catalog_feature_t f;
    memset(&f, 0, sizeof f);
    f.name = "f";
    f.dtype = dtype;
    return f;
}

static catalog_value_t i64(int64_t x)
{
    return (catalog_value_t){.type = CATALOG_DTYPE_INT64, .u.i64 = x};
}

static catalog_value_t f32_list(const float *items, size_t n)
{
    catalog_value_t v = {.type = CATALOG_DTYPE_FLOAT_LIST};
    v.u.list.n = n;
    v.u.list.v.f32 = items;
    return v;
}

static int build(const catalog_feature_t *f, const core_cell_t *cells, size_t n, bool zero,
                 Tensorflow__TensorProto *out, size_t *bad_row, char *why)
{
    return tensor_from_cells(f, cells, n, zero, &arena, out, bad_row, why, 256);
}

/* ------------------------------------------------------------------------------------------ */
/* Entity keys                                                                                 */

Test(predict_tensor, int64_vector_gives_int64_keys)
{
    int64_t ids[] = {7, -1, 1LL << 40};
    Tensorflow__TensorProto t = tensor(TENSORFLOW__DATA_TYPE__DT_INT64, 3, -1);
    t.n_int64_val = 3;
    t.int64_val = ids;
    catalog_value_t *v = NULL;
    size_t n = 0;
    char why[256];
    cr_assert_eq(keys(&t, CATALOG_DTYPE_INT64, &v, &n, why), 0, "%s", why);
    cr_assert_eq(n, 3);
    cr_assert_eq(v[0].type, CATALOG_DTYPE_INT64);
    cr_assert_eq(v[0].u.i64, 7);
    cr_assert_eq(v[1].u.i64, -1);
    cr_assert_eq(v[2].u.i64, 1LL << 40);
}

Test(predict_tensor, int32_column_of_batch_by_one_widens_to_int64_keys)
{
    int32_t ids[] = {1, 2};
    Tensorflow__TensorProto t = tensor(TENSORFLOW__DATA_TYPE__DT_INT32, 2, 1);
    t.n_int_val = 2;
    t.int_val = ids;
    catalog_value_t *v = NULL;
    size_t n = 0;
    char why[256];
    cr_assert_eq(keys(&t, CATALOG_DTYPE_INT64, &v, &n, why), 0, "%s", why);
    cr_assert_eq(n, 2);
    cr_assert_eq(v[1].type, CATALOG_DTYPE_INT64);
    cr_assert_eq(v[1].u.i64, 2);
}

Test(predict_tensor, tensor_content_is_little_endian)
{
    uint8_t raw64[] = {1, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    Tensorflow__TensorProto t = tensor(TENSORFLOW__DATA_TYPE__DT_INT64, 2, -1);
    t.tensor_content.data = raw64;
    t.tensor_content.len = sizeof raw64;
    catalog_value_t *v = NULL;
    size_t n = 0;
    char why[256];
    cr_assert_eq(keys(&t, CATALOG_DTYPE_INT64, &v, &n, why), 0, "%s", why);
    cr_assert_eq(v[0].u.i64, 1);
    cr_assert_eq(v[1].u.i64, -2);

    uint8_t raw32[] = {0x00, 0x01, 0, 0, 0xff, 0xff, 0xff, 0xff};
    t = tensor(TENSORFLOW__DATA_TYPE__DT_INT32, 2, -1);
    t.tensor_content.data = raw32;
    t.tensor_content.len = sizeof raw32;
    cr_assert_eq(keys(&t, CATALOG_DTYPE_INT32, &v, &n, why), 0, "%s", why);
    cr_assert_eq(v[0].type, CATALOG_DTYPE_INT32);
    cr_assert_eq(v[0].u.i32, 256);
    cr_assert_eq(v[1].u.i32, -1);

    t.tensor_content.len = 7;
    cr_assert_eq(keys(&t, CATALOG_DTYPE_INT32, &v, &n, why), -EINVAL);
    cr_assert(strstr(why, "not a multiple of 4") != NULL, "%s", why);
}

Test(predict_tensor, strings_give_string_or_bytes_keys)
{
    ProtobufCBinaryData s[] = {{2, (uint8_t *)"c1"}, {0, NULL}};
    Tensorflow__TensorProto t = tensor(TENSORFLOW__DATA_TYPE__DT_STRING, 2, -1);
    t.n_string_val = 2;
    t.string_val = s;
    catalog_value_t *v = NULL;
    size_t n = 0;
    char why[256];
    cr_assert_eq(keys(&t, CATALOG_DTYPE_STRING, &v, &n, why), 0, "%s", why);
    cr_assert_eq(v[0].type, CATALOG_DTYPE_STRING);
    cr_assert_eq(v[0].u.bytes.len, 2);
    cr_assert_eq(memcmp(v[0].u.bytes.data, "c1", 2), 0);
    cr_assert_eq(v[1].u.bytes.len, 0);
    cr_assert_eq(keys(&t, CATALOG_DTYPE_BYTES, &v, &n, why), 0, "%s", why);
    cr_assert_eq(v[0].type, CATALOG_DTYPE_BYTES);
}

Test(predict_tensor, mismatched_types_are_refused_by_name)
{
    float f[] = {1.0f};
    Tensorflow__TensorProto t = tensor(TENSORFLOW__DATA_TYPE__DT_FLOAT, 1, -1);
    t.n_float_val = 1;
    t.float_val = f;
    catalog_value_t *v = NULL;
    size_t n = 0;
    char why[256];
    cr_assert_eq(keys(&t, CATALOG_DTYPE_INT64, &v, &n, why), -EINVAL);
    cr_assert(strstr(why, "DT_FLOAT") && strstr(why, "DT_INT64 or DT_INT32"), "%s", why);

    int64_t ids[] = {1};
    t = tensor(TENSORFLOW__DATA_TYPE__DT_INT64, 1, -1);
    t.n_int64_val = 1;
    t.int64_val = ids;
    cr_assert_eq(keys(&t, CATALOG_DTYPE_STRING, &v, &n, why), -EINVAL);
    cr_assert(strstr(why, "DT_STRING") != NULL, "%s", why);

    t.dtype = TENSORFLOW__DATA_TYPE__DT_HALF;
    cr_assert_eq(keys(&t, CATALOG_DTYPE_INT64, &v, &n, why), -EINVAL);
    cr_assert(strstr(why, "DT_HALF") != NULL, "%s", why);
}

Test(predict_tensor, shapes_other_than_batch_or_batch_by_one_are_refused)
{
    int64_t ids[] = {1, 2};
    catalog_value_t *v = NULL;
    size_t n = 0;
    char why[256];

    Tensorflow__TensorProto t = tensor(TENSORFLOW__DATA_TYPE__DT_INT64, 1, 2);
    t.n_int64_val = 2;
    t.int64_val = ids;
    cr_assert_eq(keys(&t, CATALOG_DTYPE_INT64, &v, &n, why), -EINVAL);
    cr_assert(strstr(why, "[1, 2]") != NULL, "%s", why);

    t.tensor_shape = NULL;
    cr_assert_eq(keys(&t, CATALOG_DTYPE_INT64, &v, &n, why), -EINVAL);
    cr_assert(strstr(why, "scalar") != NULL, "%s", why);

    t = tensor(TENSORFLOW__DATA_TYPE__DT_INT64, 3, -1);
    t.n_int64_val = 2;
    t.int64_val = ids;
    cr_assert_eq(keys(&t, CATALOG_DTYPE_INT64, &v, &n, why), -EINVAL);
    cr_assert(strstr(why, "2 values for a batch of 3") != NULL, "%s", why);

    t = tensor(TENSORFLOW__DATA_TYPE__DT_INT64, -1, -1);
    cr_assert_eq(keys(&t, CATALOG_DTYPE_INT64, &v, &n, why), -EINVAL);
    cr_assert(strstr(why, "unknown batch") != NULL, "%s", why);
}

Test(predict_tensor, a_huge_claimed_batch_is_refused_before_anything_is_allocated)
{
    int64_t ids[] = {1, 2};
    ProtobufCBinaryData s[] = {{1, (uint8_t *)"a"}};
    catalog_value_t *v = NULL;
    size_t n = 0;
    char why[256];
    Tensorflow__TensorProto t = tensor(TENSORFLOW__DATA_TYPE__DT_INT64, 1LL << 40, -1);
    t.n_int64_val = 2;
    t.int64_val = ids;
    cr_assert_eq(keys(&t, CATALOG_DTYPE_INT64, &v, &n, why), -EINVAL);
    cr_assert(strstr(why, "2 values for a batch of 1099511627776") != NULL, "%s", why);
    t = tensor(TENSORFLOW__DATA_TYPE__DT_STRING, 1LL << 40, -1);
    t.n_string_val = 1;
    t.string_val = s;
    cr_assert_eq(keys(&t, CATALOG_DTYPE_STRING, &v, &n, why), -EINVAL);
}

Test(predict_tensor, int64_out_of_int32_range_is_refused_for_an_int32_key)
{
    int64_t ids[] = {1, 1LL << 33};
    Tensorflow__TensorProto t = tensor(TENSORFLOW__DATA_TYPE__DT_INT64, 2, -1);
    t.n_int64_val = 2;
    t.int64_val = ids;
    catalog_value_t *v = NULL;
    size_t n = 0;
    char why[256];
    cr_assert_eq(keys(&t, CATALOG_DTYPE_INT32, &v, &n, why), -EINVAL);
    cr_assert(strstr(why, "row 1") && strstr(why, "out of range"), "%s", why);
}

/* ------------------------------------------------------------------------------------------ */
/* Feature tensors                                                                             */

Test(predict_tensor, feast_types_map_to_tensorflow_types)
{
    cr_assert_eq(codec_tensor_dtype(CATALOG_DTYPE_FLOAT), TENSORFLOW__DATA_TYPE__DT_FLOAT);
    cr_assert_eq(codec_tensor_dtype(CATALOG_DTYPE_DOUBLE_LIST), TENSORFLOW__DATA_TYPE__DT_DOUBLE);
    cr_assert_eq(codec_tensor_dtype(CATALOG_DTYPE_INT64), TENSORFLOW__DATA_TYPE__DT_INT64);
    cr_assert_eq(codec_tensor_dtype(CATALOG_DTYPE_UNIX_TIMESTAMP), TENSORFLOW__DATA_TYPE__DT_INT64);
    cr_assert_eq(codec_tensor_dtype(CATALOG_DTYPE_INT32_LIST), TENSORFLOW__DATA_TYPE__DT_INT32);
    cr_assert_eq(codec_tensor_dtype(CATALOG_DTYPE_STRING), TENSORFLOW__DATA_TYPE__DT_STRING);
    cr_assert_eq(codec_tensor_dtype(CATALOG_DTYPE_BYTES_LIST), TENSORFLOW__DATA_TYPE__DT_STRING);
    cr_assert_eq(codec_tensor_dtype(CATALOG_DTYPE_BOOL), TENSORFLOW__DATA_TYPE__DT_BOOL);
    cr_assert_eq(codec_tensor_dtype(CATALOG_DTYPE_NULL), TENSORFLOW__DATA_TYPE__DT_INVALID);
}

Test(predict_tensor, scalars_become_a_batch_vector)
{
    catalog_feature_t f = feature(CATALOG_DTYPE_INT64);
    catalog_value_t a = i64(5), b = i64(-9);
    core_cell_t cells[] = {cell_of(&a), cell_of(&b)};
    Tensorflow__TensorProto t;
    size_t bad = 0;
    char why[256];
    cr_assert_eq(build(&f, cells, 2, false, &t, &bad, why), 0, "%s", why);
    cr_assert_eq(t.dtype, TENSORFLOW__DATA_TYPE__DT_INT64);
    cr_assert_eq(t.tensor_shape->n_dim, 1);
    cr_assert_eq(t.tensor_shape->dim[0]->size, 2);
    cr_assert_eq(t.n_int64_val, 2);
    cr_assert_eq(t.int64_val[0], 5);
    cr_assert_eq(t.int64_val[1], -9);

    f = feature(CATALOG_DTYPE_STRING);
    catalog_value_t s = {.type = CATALOG_DTYPE_STRING, .u.bytes = {(const uint8_t *)"ab", 2}};
    core_cell_t sc[] = {cell_of(&s)};
    cr_assert_eq(build(&f, sc, 1, false, &t, &bad, why), 0, "%s", why);
    cr_assert_eq(t.dtype, TENSORFLOW__DATA_TYPE__DT_STRING);
    cr_assert_eq(t.n_string_val, 1);
    cr_assert_eq(t.string_val[0].len, 2);
    cr_assert_eq(memcmp(t.string_val[0].data, "ab", 2), 0);

    f = feature(CATALOG_DTYPE_BOOL);
    catalog_value_t yes = {.type = CATALOG_DTYPE_BOOL, .u.b = true};
    core_cell_t bc[] = {cell_of(&yes)};
    cr_assert_eq(build(&f, bc, 1, false, &t, &bad, why), 0, "%s", why);
    cr_assert_eq(t.dtype, TENSORFLOW__DATA_TYPE__DT_BOOL);
    cr_assert_eq(t.bool_val[0], 1);
}

Test(predict_tensor, lists_become_a_second_dimension)
{
    catalog_feature_t f = feature(CATALOG_DTYPE_FLOAT_LIST);
    float x[] = {1.0f, 2.0f}, y[] = {3.0f, 4.0f};
    catalog_value_t a = f32_list(x, 2), b = f32_list(y, 2);
    core_cell_t cells[] = {cell_of(&a), cell_of(&b)};
    Tensorflow__TensorProto t;
    size_t bad = 0;
    char why[256];
    cr_assert_eq(build(&f, cells, 2, false, &t, &bad, why), 0, "%s", why);
    cr_assert_eq(t.tensor_shape->n_dim, 2);
    cr_assert_eq(t.tensor_shape->dim[0]->size, 2);
    cr_assert_eq(t.tensor_shape->dim[1]->size, 2);
    cr_assert_eq(t.n_float_val, 4);
    float want[] = {1.0f, 2.0f, 3.0f, 4.0f};
    for (size_t i = 0; i < 4; i++)
        cr_assert_float_eq(t.float_val[i], want[i], 0);
}

Test(predict_tensor, missing_rows_take_the_default_before_zero)
{
    catalog_feature_t f = feature(CATALOG_DTYPE_INT64);
    f.has_default = true;
    f.default_value = i64(42);
    catalog_value_t a = i64(1);
    core_cell_t outside = cell_of(&a);
    outside.status = STORE_STATUS_OUTSIDE_MAX_AGE; /* expired values are missing too */
    core_cell_t cells[] = {cell_of(&a), missing, outside};
    Tensorflow__TensorProto t;
    size_t bad = 0;
    char why[256];
    cr_assert_eq(build(&f, cells, 3, true, &t, &bad, why), 0, "%s", why);
    cr_assert_eq(t.int64_val[0], 1);
    cr_assert_eq(t.int64_val[1], 42);
    cr_assert_eq(t.int64_val[2], 42);
}

Test(predict_tensor, missing_rows_without_a_default_fail_unless_zero)
{
    catalog_feature_t f = feature(CATALOG_DTYPE_DOUBLE);
    catalog_value_t a = {.type = CATALOG_DTYPE_DOUBLE, .u.f64 = 2.5};
    catalog_value_t null = {.type = CATALOG_DTYPE_NULL};
    core_cell_t cells[] = {cell_of(&a), cell_of(&null)};
    Tensorflow__TensorProto t;
    size_t bad = 0;
    char why[256];
    cr_assert_eq(build(&f, cells, 2, false, &t, &bad, why), -ENOENT);
    cr_assert_eq(bad, 1);
    cr_assert(strstr(why, "no default") != NULL, "%s", why);

    cr_assert_eq(build(&f, cells, 2, true, &t, &bad, why), 0, "%s", why);
    cr_assert_float_eq(t.double_val[0], 2.5, 0);
    cr_assert_float_eq(t.double_val[1], 0.0, 0);
}

Test(predict_tensor, zero_lists_take_the_width_of_the_batch)
{
    catalog_feature_t f = feature(CATALOG_DTYPE_FLOAT_LIST);
    float x[] = {1.0f, 2.0f, 3.0f};
    catalog_value_t a = f32_list(x, 3);
    core_cell_t cells[] = {missing, cell_of(&a)};
    Tensorflow__TensorProto t;
    size_t bad = 0;
    char why[256];
    cr_assert_eq(build(&f, cells, 2, true, &t, &bad, why), 0, "%s", why);
    cr_assert_eq(t.tensor_shape->dim[1]->size, 3);
    cr_assert_eq(t.n_float_val, 6);
    cr_assert_float_eq(t.float_val[0], 0.0f, 0);
    cr_assert_float_eq(t.float_val[3], 1.0f, 0);

    /* Nobody has a value: width 0. */
    core_cell_t none[] = {missing, missing};
    cr_assert_eq(build(&f, none, 2, true, &t, &bad, why), 0, "%s", why);
    cr_assert_eq(t.tensor_shape->dim[0]->size, 2);
    cr_assert_eq(t.tensor_shape->dim[1]->size, 0);
    cr_assert_eq(t.n_float_val, 0);
}

Test(predict_tensor, ragged_lists_are_refused_with_the_row)
{
    catalog_feature_t f = feature(CATALOG_DTYPE_FLOAT_LIST);
    float x[] = {1.0f, 2.0f, 3.0f};
    catalog_value_t a = f32_list(x, 2), b = f32_list(x, 3);
    core_cell_t cells[] = {cell_of(&a), cell_of(&a), cell_of(&b)};
    Tensorflow__TensorProto t;
    size_t bad = 0;
    char why[256];
    cr_assert_eq(build(&f, cells, 3, false, &t, &bad, why), -EINVAL);
    cr_assert_eq(bad, 2);
    cr_assert(strstr(why, "ragged") && strstr(why, "3 items") && strstr(why, "row 0 has 2"), "%s",
              why);
}

Test(predict_tensor, int32_values_widen_into_int64_features)
{
    catalog_feature_t f = feature(CATALOG_DTYPE_INT64);
    catalog_value_t a = {.type = CATALOG_DTYPE_INT32, .u.i32 = -3};
    core_cell_t cells[] = {cell_of(&a)};
    Tensorflow__TensorProto t;
    size_t bad = 0;
    char why[256];
    cr_assert_eq(build(&f, cells, 1, false, &t, &bad, why), 0, "%s", why);
    cr_assert_eq(t.int64_val[0], -3);
}

Test(predict_tensor, stored_values_of_another_type_are_eio)
{
    catalog_feature_t f = feature(CATALOG_DTYPE_FLOAT);
    catalog_value_t a = {.type = CATALOG_DTYPE_STRING, .u.bytes = {(const uint8_t *)"x", 1}};
    core_cell_t cells[] = {missing, cell_of(&a)};
    Tensorflow__TensorProto t;
    size_t bad = 0;
    char why[256];
    cr_assert_eq(build(&f, cells, 2, true, &t, &bad, why), -EIO);
    cr_assert_eq(bad, 1);
    cr_assert(strstr(why, "STRING") && strstr(why, "FLOAT"), "%s", why);

    uint8_t junk[] = {0xff};
    core_cell_t bad_wire[] = {{junk, 1, STORE_STATUS_PRESENT, 1}};
    cr_assert_eq(build(&f, bad_wire, 1, true, &t, &bad, why), -EIO);
}

Test(predict_tensor, a_long_list_stored_in_a_scalar_feature_is_named_as_a_list)
{
    /* A scalar feature decodes without arena scratch; a stored list too long for the small
     * buffer it uses must still be decoded and named, not reported as undecodable. */
    catalog_feature_t f = feature(CATALOG_DTYPE_DOUBLE);
    float items[100];
    for (size_t i = 0; i < 100; i++)
        items[i] = (float)i;
    catalog_value_t a = f32_list(items, 100);
    core_cell_t cells[] = {cell_of(&a)};
    Tensorflow__TensorProto t;
    size_t bad = 9;
    char why[256];
    cr_assert_eq(build(&f, cells, 1, true, &t, &bad, why), -EIO);
    cr_assert_eq(bad, 0);
    cr_assert(strstr(why, "FLOAT_LIST") && strstr(why, "DOUBLE"), "%s", why);
}

Test(predict_tensor, a_scalar_batch_takes_little_more_arena_than_its_dense_values)
{
    /* Call slots keep their arena between calls: per-cell scratch or a value copy per row would
     * multiply a batch's footprint in every slot (Predict kept 636 KB for 100 x 50 before). */
    enum { N = 1000 };
    catalog_feature_t f = feature(CATALOG_DTYPE_INT64);
    core_cell_t *cells = base_arena_calloc(&arena, N, sizeof *cells);
    cr_assert_not_null(cells);
    for (size_t i = 0; i < N; i++) {
        catalog_value_t v = i64((int64_t)i * 1000);
        cells[i] = cell_of(&v);
    }
    size_t before = arena.used_total;
    Tensorflow__TensorProto t;
    size_t bad = 0;
    char why[256];
    cr_assert_eq(build(&f, cells, N, false, &t, &bad, why), 0, "%s", why);
    cr_assert_eq(t.n_int64_val, N);
    cr_assert_eq(t.int64_val[N - 1], (int64_t)(N - 1) * 1000);
    size_t used = arena.used_total - before;
    cr_assert_leq(used, N * sizeof(int64_t) + 1024, "%zu bytes of arena for %d int64 rows", used,
                  N);
}

Test(predict_tensor, an_empty_batch_has_shape_zero)
{
    catalog_feature_t f = feature(CATALOG_DTYPE_INT64_LIST);
    Tensorflow__TensorProto t;
    size_t bad = 0;
    char why[256];
    cr_assert_eq(build(&f, NULL, 0, false, &t, &bad, why), 0, "%s", why);
    cr_assert_eq(t.tensor_shape->dim[0]->size, 0);
    cr_assert_eq(t.tensor_shape->dim[1]->size, 0);
    /* It packs: protobuf-c accepts zero-length repeated fields with a non-NULL array. */
    uint8_t buf[64];
    cr_assert_leq(tensorflow__tensor_proto__pack(&t, buf), sizeof buf);
}
