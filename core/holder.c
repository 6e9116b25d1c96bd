/* core/holder.c - the current catalog: swapped atomically, read without locks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_int.h"

/*
 * Epoch-based reclamation. A reader announces the global epoch in its own pin slot, then loads
 * the current pointer; it clears the slot when the request is done. A swap publishes the new
 * pointer, then advances the epoch, and retires the old catalog tagged with the new epoch E. A
 * reader that announced an epoch >= E loaded the pointer after the swap (every operation here is
 * sequentially consistent), so it holds the new catalog; a reader at 0 holds nothing. Once every
 * pin is 0 or >= E, nobody can hold the old catalog and it is released. Readers pay two atomic
 * stores and two loads on cache lines of their own, and a reload can never block them.
 */

struct core__retired {
    core__retired_t *next;
    catalog_t *catalog;
    uint64_t epoch;
};

int core__holder_init(core__holder_t *h, catalog_t *initial, size_t n_pins)
{
    /* Each pin on its own cache line, so readers never share one: aligned_alloc, not calloc. */
    size_t bytes = (n_pins == 0 ? 1 : n_pins) * sizeof *h->pins;
    h->pins = aligned_alloc(_Alignof(core__pin_t), bytes);
    if (h->pins == NULL)
        return -ENOMEM;
    memset(h->pins, 0, bytes);
    h->n_pins = n_pins;
    for (size_t i = 0; i < n_pins; i++)
        atomic_init(&h->pins[i].active, 0);
    atomic_init(&h->epoch, 1);
    atomic_init(&h->current, initial);
    pthread_mutex_init(&h->write_lock, NULL);
    h->retired = NULL;
    return 0;
}

void core__holder_destroy(core__holder_t *h)
{
    if (h->pins == NULL)
        return;
    catalog_unref(atomic_load(&h->current));
    core__retired_t *r = h->retired;
    while (r != NULL) {
        core__retired_t *next = r->next;
        catalog_unref(r->catalog);
        free(r);
        r = next;
    }
    h->retired = NULL;
    free(h->pins);
    h->pins = NULL;
    pthread_mutex_destroy(&h->write_lock);
}

const catalog_t *core__holder_enter(core__holder_t *h, size_t pin)
{
    atomic_store(&h->pins[pin].active, atomic_load(&h->epoch));
    return atomic_load(&h->current);
}

void core__holder_exit(core__holder_t *h, size_t pin)
{
    atomic_store(&h->pins[pin].active, 0);
}

catalog_t *core__holder_ref(core__holder_t *h)
{
    /* Only swap() replaces the pointer and it holds the lock, so under the lock the current
     * catalog cannot be retired and freed between the load and the ref. */
    pthread_mutex_lock(&h->write_lock);
    catalog_t *c = catalog_ref(atomic_load(&h->current));
    pthread_mutex_unlock(&h->write_lock);
    return c;
}

int core__holder_swap(core__holder_t *h, catalog_t *next)
{
    core__retired_t *r = malloc(sizeof *r);
    if (r == NULL) {
        catalog_unref(next);
        return -ENOMEM;
    }
    pthread_mutex_lock(&h->write_lock);
    r->catalog = atomic_exchange(&h->current, next);
    r->epoch = atomic_fetch_add(&h->epoch, 1) + 1;
    r->next = h->retired;
    h->retired = r;
    pthread_mutex_unlock(&h->write_lock);
    return 0;
}

size_t core__holder_collect(core__holder_t *h)
{
    pthread_mutex_lock(&h->write_lock);
    uint64_t oldest = UINT64_MAX;
    for (size_t i = 0; i < h->n_pins; i++) {
        uint64_t e = atomic_load(&h->pins[i].active);
        if (e != 0 && e < oldest)
            oldest = e;
    }
    size_t waiting = 0;
    core__retired_t **link = &h->retired;
    while (*link != NULL) {
        core__retired_t *r = *link;
        if (oldest >= r->epoch) {
            *link = r->next;
            catalog_unref(r->catalog);
            free(r);
        } else {
            waiting++;
            link = &r->next;
        }
    }
    pthread_mutex_unlock(&h->write_lock);
    return waiting;
}
