/* http/predict.c - the core's Predict from JSON rows or columns, and its tensors as JSON. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "http/http_int.h"

/*
 * TF Serving REST and SageMaker give a binding's entity inputs as rows ("instances": one value
 * per row when the binding has one input, else an object per row) or as columns ("inputs": the
 * value list when there is one input, else an object of lists). Key values are typed by the
 * join key they feed (INT64, INT32, STRING, or BYTES as base64, also TF's {"b64": "..."}).
 */

typedef struct input_arg {
    const http_predict_in_t *in;
    size_t n_inputs; /* the binding's entity inputs */
} input_arg_t;

/* One key value: TF's {"b64": "..."} is a BYTES (or STRING) value's base64. */
static int key_value(const json_t *j, catalog_dtype_t want, unsigned flags, base_arena_t *a,
                     catalog_value_t *out, char *why, size_t cap)
{
    if (json_is_object(j) && json_object_size(j) == 1 && json_object_get(j, "b64") != NULL) {
        const json_t *s = json_object_get(j, "b64");
        if (!json_is_string(s))
            return snprintf(why, cap, "b64: want a base64 string"), -EINVAL;
        size_t n = json_string_length(s);
        uint8_t *p = base_arena_alloc(a, BASE_BASE64_DECODED_MAX(n));
        if (p == NULL)
            return -ENOMEM;
        long m = base_base64_decode(json_string_value(s), n, p, 0);
        if (m < 0)
            return snprintf(why, cap, "b64: not standard base64"), -EINVAL;
        out->type = want == CATALOG_DTYPE_STRING ? CATALOG_DTYPE_STRING : CATALOG_DTYPE_BYTES;
        out->u.bytes.data = p;
        out->u.bytes.len = (size_t)m;
        return 0;
    }
    return catalog_value_from_json(j, want, flags, a, out, why, cap);
}

static int input_values(void *arg, const char *input, catalog_dtype_t want, base_arena_t *a,
                        catalog_value_t **vals, size_t *batch, char *why, size_t why_cap)
{
    const input_arg_t *ia = arg;
    const http_predict_in_t *in = ia->in;
    const json_t *col = NULL;
    size_t n;
    if (in->instances != NULL) {
        n = json_array_size(in->instances);
    } else {
        /* A bare value (or list) feeds the binding's only input; with several, each needs its
         * name (ia->n_inputs counts entity and request inputs). */
        if (!json_is_object(in->inputs) && ia->n_inputs != 1)
            return snprintf(why, why_cap,
                            "is not named: the binding has %zu inputs, so 'inputs' must be an "
                            "object of them by name",
                            ia->n_inputs),
                   -EINVAL;
        col = json_is_object(in->inputs) ? json_object_get(in->inputs, input) : in->inputs;
        if (col == NULL)
            return -ENOENT;
        if (!json_is_array(col))
            col = NULL; /* a single value: a batch of one */
        n = col != NULL ? json_array_size(col) : 1;
    }
    catalog_value_t *v = base_arena_array(a, n + 1, sizeof *v);
    if (v == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const json_t *j;
        if (in->instances != NULL) {
            const json_t *row = json_array_get(in->instances, i);
            if (json_is_object(row) && !(ia->n_inputs == 1 && json_object_get(row, "b64"))) {
                j = json_object_get(row, input);
                if (j == NULL)
                    return i == 0 ? -ENOENT
                                  : (snprintf(why, why_cap, "instances[%zu] has no '%s'", i, input),
                                     -EINVAL);
            } else if (ia->n_inputs == 1) {
                j = row;
            } else {
                return snprintf(why, why_cap,
                                "instances[%zu]: want an object of the %zu entity inputs", i,
                                ia->n_inputs),
                       -EINVAL;
            }
        } else {
            j = col != NULL                  ? json_array_get(col, i)
                : json_is_object(in->inputs) ? json_object_get(in->inputs, input)
                                             : in->inputs;
        }
        char inner[160];
        int rc =
            key_value(j, want, in->text ? CATALOG_JSON_TEXT : 0, a, &v[i], inner, sizeof inner);
        if (rc == -EINVAL)
            return snprintf(why, why_cap, "row %zu: %s", i, inner), -EINVAL;
        if (rc < 0)
            return rc;
    }
    *vals = v;
    *batch = n;
    return 0;
}

int http__predict(http_req_t *r, const core_model_spec_t *spec, const http_predict_in_t *in,
                  core_predict_t *p)
{
    core_ctx_t *ctx = &r->ctx;
    int rc = core_predict_begin(ctx, spec, p);
    if (rc < 0)
        return rc;
    if (in->instances != NULL && json_array_size(in->instances) == 0)
        return core_fail(ctx, -EINVAL, "No values in 'instances' array");
    input_arg_t ia = {.in = in, .n_inputs = p->model->n_entity_inputs + p->n_request_fields};
    /* A bare row (not an object) is the value of the binding's one entity input. */
    for (size_t i = 0;
         in->instances != NULL && ia.n_inputs != 1 && i < json_array_size(in->instances); i++) {
        const json_t *row = json_array_get(in->instances, i);
        if (!json_is_object(row) ||
            (json_object_size(row) == 1 && json_object_get(row, "b64") != NULL))
            return core_fail(ctx, -EINVAL,
                             "instances[%zu]: want an object of named inputs (model binding "
                             "'%s' has %zu entity inputs%s, so a bare value feeds none of them)",
                             i, p->model->name, p->model->n_entity_inputs,
                             p->n_request_fields > 0 ? " and request inputs" : "");
    }
    size_t n_inputs = in->instances != NULL
                          ? (json_is_object(json_array_get(in->instances, 0))
                                 ? json_object_size(json_array_get(in->instances, 0))
                                 : 1)
                          : (json_is_object(in->inputs) ? json_object_size(in->inputs) : 1);
    rc = core_predict_entities(ctx, p, input_values, &ia, n_inputs);
    if (rc < 0)
        return rc;
    rc = core_predict_select(ctx, p, NULL, 0);
    if (rc < 0)
        return rc;
    rc = core_predict_read(ctx, p);
    if (rc < 0 || !p->model->has_upstream)
        return rc;
    return http__passthrough(r, p, in);
}
