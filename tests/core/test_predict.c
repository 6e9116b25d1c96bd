/* tests/core/test_predict.c - Predict's assembly (core/predict.c): bindings, inputs and reads,
 * and the messages that name what is wrong. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/core_int.h"
#include "tests/core/fixture.h"
#include "tests/storage/helpers.h"

static const char yaml[] = "project: p\n"
                           "entities:\n"
                           "  - {name: driver, join_keys: [{name: driver_id, type: INT64}]}\n"
                           "feature_views:\n"
                           "  - name: fv\n"
                           "    entities: [driver]\n"
                           "    features: [{name: a, dtype: INT64}]\n"
                           "  - name: g\n"
                           "    features: [{name: total, dtype: INT64}]\n"
                           "request_sources: [{name: rq, schema: [{name: n, dtype: INT64}]}]\n"
                           "on_demand_feature_views:\n"
                           "  - name: od\n"
                           "    sources: [fv, rq]\n"
                           "    features: [{name: s, dtype: INT64, expression: 'fv.a + rq.n'}]\n"
                           "feature_services:\n"
                           "  - {name: svc, features: ['fv:a', 'od:s']}\n"
                           "  - {name: glob, features: ['g:total']}\n"
                           "models:\n"
                           "  - name: m\n"
                           "    version: 1\n"
                           "    version_label: prod\n"
                           "    feature_service: svc\n"
                           "    entity_inputs: {driver_id: driver_id}\n"
                           "  - name: gm\n"
                           "    version: 2\n"
                           "    feature_service: glob\n";

static fx_t f;

static void setup(void)
{
    fx_setup(&f, yaml);
    fx_begin(&f);
}

static void teardown(void)
{
    fx_close(&f);
}

TestSuite(predict, .init = setup, .fini = teardown);

/* The request's inputs: name -> values, or an error with its reason. */
typedef struct input {
    const char *name;
    const catalog_value_t *vals;
    size_t batch;
    int rc;
    const char *why;
} input_t;

typedef struct inputs {
    const input_t *in;
    size_t n;
} inputs_t;

static int input(void *arg, const char *name, catalog_dtype_t want, base_arena_t *a,
                 catalog_value_t **vals, size_t *batch, char *why, size_t why_cap)
{
    (void)want;
    (void)a;
    const inputs_t *ins = arg;
    for (size_t i = 0; i < ins->n; i++) {
        const input_t *in = &ins->in[i];
        if (strcmp(in->name, name) != 0)
            continue;
        if (in->rc < 0) {
            snprintf(why, why_cap, "%s", in->why);
            return in->rc;
        }
        *vals = (catalog_value_t *)in->vals;
        *batch = in->batch;
        return 0;
    }
    return -ENOENT;
}

static void begin(const char *name, core_predict_t *p)
{
    core_model_spec_t spec = {.name = name};
    cr_assert_eq(core_predict_begin(&f.ctx, &spec, p), 0, "%s", f.ctx.msg);
}

/* The catalog lists its bindings in name order, with their labels. */
Test(predict, an_unknown_version_or_label_lists_the_bindings)
{
    core_predict_t p;
    core_model_spec_t spec = {.name = "m", .has_version = true, .version = 9};
    cr_assert_eq(core_predict_begin(&f.ctx, &spec, &p), -ENOENT);
    cr_assert_str_eq(f.ctx.msg, "model binding 'm' version 9 not found; the catalog has "
                                "gm@v2, m@v1 (label 'prod')");
    spec = (core_model_spec_t){.name = "m", .label = "canary"};
    cr_assert_eq(core_predict_begin(&f.ctx, &spec, &p), -ENOENT);
    cr_assert_str_eq(f.ctx.msg, "model binding 'm' label 'canary' not found; the catalog has "
                                "gm@v2, m@v1 (label 'prod')");
    spec = (core_model_spec_t){.name = "m", .label = "prod"};
    cr_assert_eq(core_predict_begin(&f.ctx, &spec, &p), 0, "%s", f.ctx.msg);
    cr_assert_eq(p.n_request_fields, 1);
    cr_assert_str_eq(p.request_fields[0]->field->name, "n");
    spec = (core_model_spec_t){.name = ""};
    cr_assert_eq(core_predict_begin(&f.ctx, &spec, &p), -EINVAL);
    cr_assert_str_eq(f.ctx.msg, "model_spec.name is required (a model binding)");
}

Test(predict, a_request_input_of_another_batch_or_unreadable_is_refused)
{
    core_predict_t p;
    begin("m", &p);
    catalog_value_t ids[2] = {th_i64(1), th_i64(2)};
    catalog_value_t ns[3] = {th_i64(1), th_i64(2), th_i64(3)};
    input_t in[2] = {{"driver_id", ids, 2, 0, NULL}, {"n", ns, 3, 0, NULL}};
    inputs_t ins = {in, 2};
    cr_assert_eq(core_predict_entities(&f.ctx, &p, input, &ins, 2), -EINVAL);
    cr_assert_str_eq(f.ctx.msg, "request input 'n' has 3 rows; the batch has 2");
    in[1] = (input_t){"n", NULL, 0, -EINVAL, "has shape [2, 2]; want [batch]"};
    cr_assert_eq(core_predict_entities(&f.ctx, &p, input, &ins, 2), -EINVAL);
    cr_assert_str_eq(f.ctx.msg, "request input 'n' has shape [2, 2]; want [batch]");
    in[1] = (input_t){"n", NULL, 0, -ENOMEM, ""};
    cr_assert_eq(core_predict_entities(&f.ctx, &p, input, &ins, 2), -ENOMEM);
    cr_assert_str_eq(f.ctx.msg, "out of memory");
    in[1] = (input_t){"n", ns, 2, 0, NULL};
    cr_assert_eq(core_predict_entities(&f.ctx, &p, input, &ins, 2), 0, "%s", f.ctx.msg);
    cr_assert_eq(p.ents.n_rows, 2);
    cr_assert_eq(p.request.n_rows, 2);
    cr_assert_str_eq(p.request.names[0], "n");
}

/* A binding whose views are all entityless reads one row, and names it by number. */
Test(predict, an_entityless_binding_names_its_row_by_number)
{
    core_predict_t p;
    begin("gm", &p);
    inputs_t ins = {NULL, 0};
    cr_assert_eq(core_predict_entities(&f.ctx, &p, input, &ins, 0), 0, "%s", f.ctx.msg);
    cr_assert_eq(p.ents.n_rows, 1);
    cr_assert_eq(core_predict_select(&f.ctx, &p, NULL, 0), 0);
    cr_assert_eq(core_predict_read(&f.ctx, &p), -ENOENT);
    cr_assert_str_eq(f.ctx.msg, "entity row 0: feature 'g@v1:total' (output 'total'): no value "
                                "and no default (on_missing: error)");
    core_read_end(&f.ctx);
    fx_put(&f, "g", 0, 0, th_i64(99), store_now_us());
    cr_assert_eq(core_predict_read(&f.ctx, &p), 0, "%s", f.ctx.msg);
    cr_assert_eq(p.tensors[0].n_rows, 1);
    cr_assert_eq(p.tensors[0].v.i64[0], 99);
}

Test(predict, a_read_waiting_for_a_sequence_on_a_single_node_is_refused)
{
    core_predict_t p;
    begin("gm", &p);
    inputs_t ins = {NULL, 0};
    cr_assert_eq(core_predict_entities(&f.ctx, &p, input, &ins, 0), 0, "%s", f.ctx.msg);
    cr_assert_eq(core_predict_select(&f.ctx, &p, NULL, 0), 0);
    f.ctx.min_seq = 3;
    cr_assert_eq(core_predict_read(&f.ctx, &p), -EBUSY);
    cr_assert_str_eq(f.ctx.msg, "fstore-min-seq 3: this server does not replicate (started "
                                "without --replication), so there is no sequence to wait for");
    cr_assert_not(f.ctx.reading, "no store read was opened");
}

/* Selecting only the stored output drops the request field the on-demand one needed. */
Test(predict, a_filter_keeps_the_request_fields_of_the_selected_outputs_only)
{
    core_predict_t p;
    begin("m", &p);
    const char *only_a[1] = {"a"};
    cr_assert_eq(core_predict_select(&f.ctx, &p, only_a, 1), 0, "%s", f.ctx.msg);
    cr_assert_eq(p.n_out, 1);
    cr_assert_str_eq(p.names[0], "a");
    cr_assert_eq(p.n_request_fields, 0);
    const char *bad[1] = {"zz"};
    cr_assert_eq(core_predict_select(&f.ctx, &p, bad, 1), -EINVAL);
    cr_assert_str_eq(f.ctx.msg, "output_filter names 'zz', not an output of this model; the "
                                "outputs are: a, s");
}
