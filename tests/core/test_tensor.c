/* tests/core/test_tensor.c - Predict's tensors from cells (core/tensor.c): widening what writers
 * may store, and the errors that name the row and the reason. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/core_int.h"
#include "tests/storage/helpers.h"

static const char yaml[] =
    "project: p\n"
    "entities: [{name: driver, join_keys: [{name: driver_id, type: INT64}]}]\n"
    "feature_views:\n"
    "  - name: fv\n"
    "    entities: [driver]\n"
    "    features: [{name: n, dtype: INT64}, {name: l, dtype: INT64_LIST},\n"
    "               {name: fl, dtype: FLOAT_LIST}]\n"
    "on_demand_feature_views:\n"
    "  - name: od\n"
    "    sources: [fv]\n"
    "    features: [{name: v, dtype: INT64, expression: 'fv.n', validation: {max: 5}}]\n";

static catalog_t *cat;
static base_arena_t arena;
static char why[256];

static void setup(void)
{
    cat = th_catalog(yaml);
    base_arena_init(&arena, 4096);
}

static void teardown(void)
{
    base_arena_free(&arena);
    catalog_unref(cat);
}

TestSuite(tensor, .init = setup, .fini = teardown);

static const catalog_feature_t *feature(const char *s)
{
    catalog_feature_ref_t r;
    cr_assert_eq(catalog_find_feature(cat, s, strlen(s), &r), 0, "%s", s);
    return r.feature;
}

/* A present cell holding v's wire form (in the arena). */
static core_cell_t cell_of(const catalog_value_t *v)
{
    size_t n = catalog_value_wire_size(v);
    uint8_t *w = base_arena_alloc(&arena, n == 0 ? 1 : n);
    cr_assert_not_null(w);
    cr_assert_eq(catalog_value_encode(v, w, n), (int)n);
    return (core_cell_t){w, (uint32_t)n, STORE_STATUS_PRESENT, 1};
}

static catalog_value_t i32_list(int32_t *items, size_t n)
{
    catalog_value_t v = {.type = CATALOG_DTYPE_INT32_LIST};
    v.u.list.n = n;
    v.u.list.v.i32 = items;
    return v;
}

/* The catalog lets writers store INT32 lists in an INT64_LIST feature: Predict widens them. */
Test(tensor, int32_lists_in_an_int64_list_feature_are_widened)
{
    int32_t a[3] = {1, -2, 2147483647}, b[3] = {4, 5, -6};
    catalog_value_t va = i32_list(a, 3), vb = i32_list(b, 3);
    core_cell_t cells[2] = {cell_of(&va), cell_of(&vb)};
    core_tensor_t t;
    size_t bad = 99;
    cr_assert_eq(core__tensor_from_cells(feature("fv:l"), cells, 2, false, &arena, &t, &bad, why,
                                         sizeof why),
                 0, "%s", why);
    cr_assert_eq(t.elem, CATALOG_DTYPE_INT64);
    cr_assert(t.list);
    cr_assert_eq(t.n_rows, 2);
    cr_assert_eq(t.width, 3);
    cr_assert_eq(t.n, 6);
    const int64_t want[6] = {1, -2, 2147483647, 4, 5, -6};
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(t.v.i64[i], want[i], "item %zu", i);
}

Test(tensor, an_int32_in_an_int64_feature_is_widened)
{
    catalog_value_t v = {.type = CATALOG_DTYPE_INT32, .u.i32 = -7};
    core_cell_t cells[1] = {cell_of(&v)};
    core_tensor_t t;
    size_t bad = 99;
    cr_assert_eq(core__tensor_from_cells(feature("fv:n"), cells, 1, false, &arena, &t, &bad, why,
                                         sizeof why),
                 0, "%s", why);
    cr_assert_eq(t.elem, CATALOG_DTYPE_INT64);
    cr_assert_eq(t.v.i64[0], -7);
}

/* A stored record that failed its checksum is INVALID: a damaged record, named as such, never
 * replaced by a default or zeros. */
Test(tensor, a_damaged_stored_record_fails_even_with_zero_missing)
{
    catalog_value_t v = th_i64(3);
    core_cell_t cells[2] = {cell_of(&v), {NULL, 0, STORE_STATUS_INVALID, 0}};
    core_tensor_t t;
    size_t bad = 99;
    cr_assert_eq(
        core__tensor_from_cells(feature("fv:n"), cells, 2, true, &arena, &t, &bad, why, sizeof why),
        -EBADMSG);
    cr_assert_eq(bad, 1);
    cr_assert_str_eq(why, "the stored record is damaged (its checksum does not match; run fstore "
                          "verify)");
    /* the same in a list feature */
    cr_assert_eq(core__tensor_from_cells(feature("fv:l"), &cells[1], 1, true, &arena, &t, &bad, why,
                                         sizeof why),
                 -EBADMSG);
    cr_assert_eq(bad, 0);
}

/* An on-demand value that broke its rule is INVALID without bytes: a missing value, which
 * zero_missing fills and on_missing: error names as such. */
Test(tensor, a_computed_value_that_broke_its_rule_is_missing)
{
    core_cell_t cells[2] = {{NULL, 0, STORE_STATUS_NOT_FOUND, 0},
                            {NULL, 0, STORE_STATUS_INVALID, 0}};
    core_tensor_t t;
    size_t bad = 99;
    cr_assert_eq(core__tensor_from_cells(feature("od:v"), cells, 2, false, &arena, &t, &bad, why,
                                         sizeof why),
                 -ENOENT);
    cr_assert_eq(bad, 0, "the first missing row");
    cr_assert_str_eq(why, "no value and no default (on_missing: error)");
    cr_assert_eq(core__tensor_from_cells(feature("od:v"), &cells[1], 1, false, &arena, &t, &bad,
                                         why, sizeof why),
                 -ENOENT);
    cr_assert_str_eq(why, "a computed value that breaks its validation and no default "
                          "(on_missing: error)");
    cr_assert_eq(
        core__tensor_from_cells(feature("od:v"), cells, 2, true, &arena, &t, &bad, why, sizeof why),
        0);
    cr_assert_eq(t.v.i64[0], 0);
    cr_assert_eq(t.v.i64[1], 0);
}

Test(tensor, a_stored_value_of_another_type_or_that_does_not_decode_is_an_io_error)
{
    catalog_value_t s = th_str("seven");
    core_cell_t cells[1] = {cell_of(&s)};
    core_tensor_t t;
    size_t bad = 99;
    cr_assert_eq(core__tensor_from_cells(feature("fv:n"), cells, 1, false, &arena, &t, &bad, why,
                                         sizeof why),
                 -EIO);
    cr_assert_eq(bad, 0);
    cr_assert_str_eq(why, "the stored value is STRING, the feature is INT64");
    /* a float list where an INT64 list is expected: no widening for that */
    float fl[2] = {1.0f, 2.0f};
    catalog_value_t vf = {.type = CATALOG_DTYPE_FLOAT_LIST};
    vf.u.list.n = 2;
    vf.u.list.v.f32 = fl;
    cells[0] = cell_of(&vf);
    cr_assert_eq(core__tensor_from_cells(feature("fv:l"), cells, 1, false, &arena, &t, &bad, why,
                                         sizeof why),
                 -EIO);
    cr_assert_str_eq(why, "the stored value is FLOAT_LIST, the feature is INT64_LIST");
    /* bytes that are no feast.types.Value: field 15, wire type 7 does not exist */
    static const uint8_t junk[3] = {0x7f, 0xff, 0xff};
    cells[0] = (core_cell_t){junk, sizeof junk, STORE_STATUS_PRESENT, 1};
    cr_assert_eq(core__tensor_from_cells(feature("fv:n"), cells, 1, false, &arena, &t, &bad, why,
                                         sizeof why),
                 -EIO);
    cr_assert(strncmp(why, "the stored value does not decode (", 34) == 0, "%s", why);
}

Test(tensor, a_type_without_a_tensor_form_is_refused)
{
    catalog_feature_t f = {.name = "odd", .dtype = CATALOG_DTYPE_NULL};
    core_cell_t cells[1] = {{NULL, 0, STORE_STATUS_NOT_FOUND, 0}};
    core_tensor_t t;
    size_t bad = 99;
    cr_assert_eq(core__tensor_from_cells(&f, cells, 1, true, &arena, &t, &bad, why, sizeof why),
                 -EINVAL);
    cr_assert_eq(bad, 0);
    char want[64];
    snprintf(want, sizeof want, "type %s has no tensor form",
             catalog_dtype_name(CATALOG_DTYPE_NULL));
    cr_assert_str_eq(why, want);
}

/* Rows without a value are zeros of the common width; a row of another width is ragged. */
Test(tensor, missing_list_rows_are_zero_filled_and_ragged_rows_are_named)
{
    float a[2] = {1.5f, 2.5f}, b[3] = {1, 2, 3};
    catalog_value_t va = {.type = CATALOG_DTYPE_FLOAT_LIST}, vb = va;
    va.u.list.n = 2;
    va.u.list.v.f32 = a;
    vb.u.list.n = 3;
    vb.u.list.v.f32 = b;
    core_cell_t cells[3] = {{NULL, 0, STORE_STATUS_NOT_FOUND, 0}, cell_of(&va), cell_of(&vb)};
    core_tensor_t t;
    size_t bad = 99;
    cr_assert_eq(core__tensor_from_cells(feature("fv:fl"), cells, 2, true, &arena, &t, &bad, why,
                                         sizeof why),
                 0, "%s", why);
    cr_assert_eq(t.elem, CATALOG_DTYPE_FLOAT);
    cr_assert_eq(t.width, 2);
    cr_assert_eq(t.n, 4);
    cr_assert_eq(t.v.f32[0], 0.0f);
    cr_assert_eq(t.v.f32[1], 0.0f);
    cr_assert_eq(t.v.f32[2], 1.5f);
    cr_assert_eq(t.v.f32[3], 2.5f);
    cr_assert_eq(core__tensor_from_cells(feature("fv:fl"), cells, 3, true, &arena, &t, &bad, why,
                                         sizeof why),
                 -EINVAL);
    cr_assert_eq(bad, 2);
    cr_assert_str_eq(why, "ragged list: 3 items where row 1 has 2; Predict needs the same length "
                          "in every row of a batch");
}
