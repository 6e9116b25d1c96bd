/* repl/repl.c - the connection, the stream, the log's catalog, status and waits. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "repl/repl_int.h"

void repl_options_init(repl_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->max_age_s = -1;
    o->max_bytes = -1;
}

const char *repl_state_name(repl_state_t s)
{
    switch (s) {
    case REPL_CONNECTING:
        return "connecting";
    case REPL_CATCHING_UP:
        return "catching_up";
    case REPL_READY:
        return "ready";
    case REPL_NEEDS_SNAPSHOT:
        return "needs_snapshot";
    case REPL_FAILED:
        return "failed";
    }
    return "unknown";
}

int repl__fail(char *err, size_t cap, int rc, const char *fmt, ...)
{
    if (err != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return rc;
}

void repl__error(struct repl *r, const char *event, const char *fmt, ...)
{
    char buf[sizeof r->last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&r->mu);
    memcpy(r->last_error, buf, sizeof buf);
    pthread_mutex_unlock(&r->mu);
    base_log(BASE_LOG_ERROR, event, "{s:s, s:s}", "stream", r->stream, "error", buf);
}

void repl__nats_text(natsStatus s, jsErrCode jerr, char *buf, size_t cap)
{
    /* Some paths return a status without setting the last error (NO_RESPONDERS, NOT_FOUND):
     * the status and code decide, the library's text only adds to them. */
    const char *text = nats_GetLastError(NULL);
    if (s == NATS_NO_RESPONDERS || s == NATS_TIMEOUT || s == NATS_NOT_FOUND || text == NULL)
        text = "";
    if (jerr != 0)
        snprintf(buf, cap, "%s (JetStream error %d)%s%s", natsStatus_GetText(s), (int)jerr,
                 text[0] ? ": " : "", text);
    else if (text[0])
        snprintf(buf, cap, "%s: %s", natsStatus_GetText(s), text);
    else
        snprintf(buf, cap, "%s", natsStatus_GetText(s));
}

const char *repl_stream(const repl_t *r)
{
    return r->stream;
}

/* ------------------------------------------------------------------------------------------ */
/* Connection callbacks (cnats's one callback thread: never block here)                        */

/* cnats posts some callbacks whenever their cause happens, after the connection's closed
 * callback too: a consumer heartbeat timer that fired as the subscription went, an ordered
 * consumer's re-creation failing on a thread of its own. So the closure cnats keeps is a ticket
 * into this table, never r: a late callback finds its node gone instead of freed memory. A
 * callback uses r only with live_mu held (briefly, never blocking; its log line comes after),
 * so repl_close() cannot free r under it. */
#define LIVE_SLOTS 64
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static repl_t *live[LIVE_SLOTS];
static uintptr_t live_tickets;
static uint64_t live_late; /* callbacks that came after their node closed */

/* Returns: 0, -EMFILE (LIVE_SLOTS nodes open in this process). */
static int live_add(repl_t *r)
{
    pthread_mutex_lock(&live_mu);
    int rc = -EMFILE;
    for (uintptr_t i = 0; i < LIVE_SLOTS; i++) {
        if (live[i] == NULL) {
            live[i] = r;
            r->ticket = ++live_tickets * LIVE_SLOTS + i;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&live_mu);
    return rc;
}

static void live_remove(repl_t *r)
{
    pthread_mutex_lock(&live_mu);
    if (r->ticket != 0 && live[r->ticket % LIVE_SLOTS] == r)
        live[r->ticket % LIVE_SLOTS] = NULL;
    pthread_mutex_unlock(&live_mu);
}

/* The node a ticket names, with live_mu held (give it back with live_leave()), or NULL. */
static repl_t *live_enter(void *ticket)
{
    uintptr_t t = (uintptr_t)ticket;
    pthread_mutex_lock(&live_mu);
    repl_t *r = live[t % LIVE_SLOTS];
    if (r != NULL && r->ticket == t)
        return r;
    live_late++;
    pthread_mutex_unlock(&live_mu);
    return NULL;
}

static void live_leave(void)
{
    pthread_mutex_unlock(&live_mu);
}

void repl__on_disconnected(natsConnection *nc, void *ticket)
{
    repl_t *r = live_enter(ticket);
    if (r == NULL)
        return;
    char stream[sizeof r->stream];
    memcpy(stream, r->stream, sizeof stream);
    pthread_mutex_lock(&r->mu);
    bool closing = r->closing, replaced = nc != r->nc;
    bool was = !replaced && atomic_exchange(&r->connected, false);
    pthread_mutex_unlock(&r->mu);
    live_leave();        /* the log line without the table's lock */
    if (was && !closing) /* was: not a connection a TLS reload put aside */
        base_log(BASE_LOG_WARN, "nats_disconnected", "{s:s}", "stream", stream);
}

void repl__on_reconnected(natsConnection *nc, void *ticket)
{
    repl_t *r = live_enter(ticket);
    if (r == NULL)
        return;
    char stream[sizeof r->stream];
    memcpy(stream, r->stream, sizeof stream);
    pthread_mutex_lock(&r->mu);
    bool replaced = nc != r->nc;
    if (!replaced)
        atomic_store(&r->connected, true);
    pthread_mutex_unlock(&r->mu);
    live_leave();
    if (replaced)
        return;
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    base_log(BASE_LOG_INFO, "nats_reconnected", "{s:s, s:s}", "stream", stream, "server", url);
}

/* What repl_close() waits for before it destroys the connection (and a TLS reload before it
 * destroys the one it replaced). */
void repl__on_closed(natsConnection *nc, void *ticket)
{
    repl_t *r = live_enter(ticket);
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    if (nc == r->nc)
        r->nc_closed = true;
    else
        r->old_nc_closed = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    live_leave();
}

/* Never dereference sub here (cnats 3.4.1 may pass a freed one): any subscription trouble
 * means "check the replica's consumer", which the watchdog does. */
void repl__on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *ticket)
{
    (void)sub;
    repl_t *r = live_enter(ticket);
    if (r == NULL)
        return;
    char stream[sizeof r->stream];
    memcpy(stream, r->stream, sizeof stream);
    pthread_mutex_lock(&r->mu);
    bool replaced = nc != r->nc;
    if (!replaced && (err == NATS_SLOW_CONSUMER || err == NATS_MISSED_HEARTBEAT))
        r->resubscribe = true;
    pthread_mutex_unlock(&r->mu);
    live_leave();
    if (replaced)
        return;
    base_log(BASE_LOG_WARN, "nats_error", "{s:s, s:s}", "stream", stream, "error",
             natsStatus_GetText(err));
}

/* ------------------------------------------------------------------------------------------ */
/* Opening                                                                                     */

static void upper_token(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (; *in != '\0' && n + 1 < cap; in++)
        out[n++] = isalnum((unsigned char)*in) ? (char)toupper((unsigned char)*in) : '_';
    out[n] = '\0';
}

/* A stream name or subject prefix: printable, no spaces or wildcards; a prefix may have dots. */
static bool valid_token(const char *s, bool dots)
{
    if (s == NULL || s[0] == '\0' || s[0] == '.')
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p <= ' ' || *p > '~' || *p == '*' || *p == '>' || (*p == '.' && !dots))
            return false;
        if (*p == '.' && (p[1] == '.' || p[1] == '\0'))
            return false;
    }
    return true;
}

static int set_servers(repl_t *r, natsOptions *no, char *err, size_t cap)
{
    const char *list[16];
    int n = 0;
    char *urls = strdup(r->urls); /* cut by strtok_r; r->urls stays whole for messages */
    if (urls == NULL)
        return -ENOMEM;
    int rc = 0;
    for (char *save = NULL, *tok = strtok_r(urls, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (*tok == '\0')
            continue;
        if (n == 16) {
            rc = repl__fail(err, cap, -EINVAL, "--replication: at most 16 URLs");
            break;
        }
        list[n++] = tok;
    }
    if (rc == 0 && n == 0)
        rc = repl__fail(err, cap, -EINVAL, "--replication: no NATS URL given");
    natsStatus s = rc == 0 ? natsOptions_SetServers(no, list, n) : NATS_OK;
    if (s != NATS_OK)
        rc = repl__fail(err, cap, -EINVAL, "--replication: %s", natsStatus_GetText(s));
    free(urls);
    return rc;
}

/* TLS to NATS, from the options (repl_options_t.tls_*). Returns: 0, -EINVAL with err set. */
static int set_tls(repl_t *r, natsOptions *no, char *err, size_t cap)
{
    const repl_options_t *o = &r->o;
    if ((o->tls_cert == NULL) != (o->tls_key == NULL))
        return repl__fail(err, cap, -EINVAL,
                          "--replication-tls-cert and --replication-tls-key go together");
    bool tls = o->tls_ca != NULL || o->tls_cert != NULL || strstr(o->urls, "tls://") != NULL;
    if (!tls)
        return 0;
    natsStatus s = natsOptions_SetSecure(no, true);
    if (s == NATS_OK && o->tls_ca != NULL &&
        (s = natsOptions_LoadCATrustedCertificates(no, o->tls_ca)) != NATS_OK) {
        char why[200];
        repl__nats_text(s, 0, why, sizeof why);
        return repl__fail(err, cap, -EINVAL, "--replication-tls-ca %s: %s", o->tls_ca, why);
    }
    if (s == NATS_OK && o->tls_cert != NULL &&
        (s = natsOptions_LoadCertificatesChain(no, o->tls_cert, o->tls_key)) != NATS_OK) {
        char why[200];
        repl__nats_text(s, 0, why, sizeof why);
        return repl__fail(err, cap, -EINVAL,
                          "--replication-tls-cert %s / --replication-tls-key %s: %s", o->tls_cert,
                          o->tls_key, why);
    }
    if (s != NATS_OK)
        return repl__fail(err, cap, -EINVAL, "TLS to NATS: %s", natsStatus_GetText(s));
    return 0;
}

/* The identity of each TLS file (CA, certificate, key) as it is now: what a reload compares. */
static void tls_ids(const repl_t *r, struct repl__file_id ids[3])
{
    const char *paths[3] = {r->tls_ca, r->tls_cert, r->tls_key};
    memset(ids, 0, 3 * sizeof *ids);
    for (int i = 0; i < 3; i++) {
        struct stat st;
        if (paths[i] == NULL || stat(paths[i], &st) != 0)
            continue;
        ids[i] = (struct repl__file_id){
            .dev = (unsigned long long)st.st_dev,
            .ino = (unsigned long long)st.st_ino,
            .size = (unsigned long long)st.st_size,
            .mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec,
            .ctime_ns = (long long)st.st_ctim.tv_sec * 1000000000ll + st.st_ctim.tv_nsec,
            .exists = true};
    }
}

static bool same_ids(const struct repl__file_id *a, const struct repl__file_id *b)
{
    for (int i = 0; i < 3; i++) {
        if (a[i].exists != b[i].exists || a[i].dev != b[i].dev || a[i].ino != b[i].ino ||
            a[i].size != b[i].size || a[i].mtime_ns != b[i].mtime_ns ||
            a[i].ctime_ns != b[i].ctime_ns)
            return false;
    }
    return true;
}

/* What a connection is made with: the servers, TLS from the files as they are now, and the
 * callbacks (r's ticket). Returns: 0 and *out (the caller's); -EINVAL, -ENOMEM; err says why. */
static int make_options(repl_t *r, natsOptions **out, char *err, size_t cap)
{
    natsOptions *no = NULL;
    natsStatus s = natsOptions_Create(&no);
    if (s != NATS_OK)
        return repl__fail(err, cap, -ENOMEM, "NATS options: %s", natsStatus_GetText(s));
    int rc = set_servers(r, no, err, cap);
    if (rc == 0)
        rc = set_tls(r, no, err, cap);
    if (rc < 0) {
        natsOptions_Destroy(no);
        return rc;
    }
    /* Reconnect forever, quickly; notice a dead server in about 3 s; let requests in flight
     * fail at once on a disconnect (the publishers retry them) rather than wait them out. */
    natsOptions_SetName(no, r->name);
    natsOptions_SetTimeout(no, 2000);
    natsOptions_SetMaxReconnect(no, -1);
    natsOptions_SetReconnectWait(no, 250);
    natsOptions_SetPingInterval(no, 1000);
    natsOptions_SetMaxPingsOut(no, 3);
    natsOptions_SetFailRequestsOnDisconnect(no, true);
    void *ticket = (void *)r->ticket;
    natsOptions_SetErrorHandler(no, repl__on_error, ticket);
    natsOptions_SetDisconnectedCB(no, repl__on_disconnected, ticket);
    natsOptions_SetReconnectedCB(no, repl__on_reconnected, ticket);
    natsOptions_SetClosedCB(no, repl__on_closed, ticket);
    *out = no;
    return 0;
}

static int connect_nats(repl_t *r, char *err, size_t cap)
{
    if (live_add(r) < 0)
        return repl__fail(err, cap, -EMFILE, "more than %d replicated stores open in one process",
                          LIVE_SLOTS);
    tls_ids(r, r->tls_seen); /* before they are read: a change from here on is reloaded */
    int rc = make_options(r, &r->nopts, err, cap);
    if (rc < 0)
        return rc;
    natsStatus s;
    /* A server that is not up yet at start (the nodes and NATS start together) is waited for,
     * a bounded time. */
    int64_t until = base_mono_us() + r->o.connect_timeout_ms * 1000, logged = 0;
    for (;;) {
        s = natsConnection_Connect(&r->nc, r->nopts);
        if (s == NATS_OK)
            break;
        int64_t now = base_mono_us();
        if ((s != NATS_NO_SERVER && s != NATS_TIMEOUT) || now >= until) {
            char why[300];
            repl__nats_text(s, 0, why, sizeof why);
            bool tls = r->o.tls_ca != NULL || r->o.tls_cert != NULL;
            return repl__fail(err, cap, -ECONNREFUSED, "no NATS server answered at %s: %s%s",
                              r->o.urls, why,
                              s == NATS_SSL_ERROR || (tls && s == NATS_PROTOCOL_ERROR)
                                  ? " (TLS: do the servers take TLS, trust this node's "
                                    "--replication-tls-cert, and does --replication-tls-ca "
                                    "sign theirs?)"
                                  : "");
        }
        if (now - logged > 5000000) {
            base_log(BASE_LOG_WARN, "nats_connect_retry", "{s:s, s:s}", "urls", r->o.urls, "error",
                     natsStatus_GetText(s));
            logged = now;
        }
        struct timespec ts = {0, 250 * 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&r->connected, true);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;
    s = natsConnection_JetStream(&r->js, r->nc, &jo);
    if (s != NATS_OK)
        return repl__fail(err, cap, -EIO, "JetStream context: %s", natsStatus_GetText(s));
    return 0;
}

/* Field-by-field comparison of what we own in an existing stream's config. */
static int check_stream(repl_t *r, const jsStreamConfig *c, char *err, size_t cap)
{
    if (c->SubjectsLen != 1 || strcmp(c->Subjects[0], r->filter) != 0)
        return repl__fail(err, cap, -EEXIST,
                          "stream %s exists with subjects %s%s, not %s: choose another --stream "
                          "or --subject-prefix",
                          r->stream, c->SubjectsLen > 0 ? c->Subjects[0] : "(none)",
                          c->SubjectsLen > 1 ? ", ..." : "", r->filter);
    if (r->o.replicas > 0 && c->Replicas != (int64_t)r->o.replicas)
        return repl__fail(err, cap, -EEXIST,
                          "stream %s exists with %lld replicas, --stream-replicas is %u (fstore "
                          "never reconfigures a stream: change it with the nats tool, or match it)",
                          r->stream, (long long)c->Replicas, r->o.replicas);
    int64_t age_ns = r->o.max_age_s * 1000000000ll;
    if (r->o.max_age_s >= 0 && c->MaxAge != age_ns)
        return repl__fail(
            err, cap, -EEXIST, "stream %s exists with max age %llds, --stream-max-age is %llds",
            r->stream, (long long)(c->MaxAge / 1000000000ll), (long long)r->o.max_age_s);
    int64_t bytes = r->o.max_bytes > 0 ? r->o.max_bytes : -1;
    if (r->o.max_bytes >= 0 && c->MaxBytes != bytes)
        return repl__fail(err, cap, -EEXIST,
                          "stream %s exists with max bytes %lld, --stream-max-bytes is %lld",
                          r->stream, (long long)c->MaxBytes, (long long)r->o.max_bytes);
    /* What the log must be whatever the flags: a durable record every node replays in full,
     * dropped only from its start, that catches a retried write within fstore's window. */
    if (c->Retention != js_LimitsPolicy)
        return repl__fail(err, cap, -EEXIST,
                          "stream %s exists with %s retention: fstore needs limits retention (an "
                          "interest or work-queue stream deletes messages a node has yet to "
                          "replay)",
                          r->stream, c->Retention == js_InterestPolicy ? "interest" : "work-queue");
    if (c->Storage != js_FileStorage)
        return repl__fail(err, cap, -EEXIST,
                          "stream %s exists in memory storage: the log is the source of truth and "
                          "must survive a nats-server restart (file storage)",
                          r->stream);
    if (c->Discard != js_DiscardOld)
        return repl__fail(err, cap, -EEXIST,
                          "stream %s exists with discard policy new: once full it refuses every "
                          "write; fstore needs discard old (the oldest messages go, and a replica "
                          "that needed them asks for a snapshot)",
                          r->stream);
    int64_t payload = r->nc != NULL ? natsConnection_GetMaxPayload(r->nc) : 0;
    if (c->MaxMsgSize > 0 && c->MaxMsgSize < payload)
        return repl__fail(err, cap, -EEXIST,
                          "stream %s exists with a %lld-byte message limit, under the server's "
                          "%lld-byte max_payload: writes between the two would be refused",
                          r->stream, (long long)c->MaxMsgSize, (long long)payload);
    if (c->MaxMsgsPerSubject > 0)
        return repl__fail(err, cap, -EEXIST,
                          "stream %s exists with at most %lld messages per subject: that drops "
                          "writes from the middle of the log, which no replica could replay",
                          r->stream, (long long)c->MaxMsgsPerSubject);
    int64_t dup_ns =
        c->MaxAge > 0 && c->MaxAge < 120 * 1000000000ll ? c->MaxAge : 120 * 1000000000ll;
    if (c->Duplicates < dup_ns)
        return repl__fail(err, cap, -EEXIST,
                          "stream %s exists with a duplicate window of %lld ms: a retried write "
                          "is applied once only within it, and fstore promises %lld s",
                          r->stream, (long long)(c->Duplicates / 1000000),
                          (long long)(dup_ns / 1000000000ll));
    return 0;
}

/* JetStream not answering yet (a cluster electing its meta leader at start, a stream leader
 * election): worth asking again. */
static bool transient(natsStatus s, jsErrCode jerr)
{
    return s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS || jerr == JSNotEnabledErr ||
           jerr == JSClusterNotAvailErr || s == NATS_CONNECTION_DISCONNECTED;
}

/* A wait for JetStream to answer again, said at its first miss and every 5 s after it (an
 * operator sees why a start or a catalog change has not gone on). */
static void waiting(repl_t *r, const char *what, const char *why, int64_t *logged)
{
    int64_t now = base_mono_us();
    if (*logged != 0 && now - *logged < 5000000)
        return;
    base_log(BASE_LOG_WARN, "jetstream_waiting", "{s:s, s:s, s:s}", "stream", r->stream, "for",
             what, "error", why);
    *logged = now;
}

static int ensure_stream_once(repl_t *r, bool *retry, char *err, size_t cap);

static int ensure_stream(repl_t *r, char *err, size_t cap)
{
    int64_t until = base_mono_us() + r->o.connect_timeout_ms * 1000, logged = 0;
    for (;;) {
        bool retry = false;
        int rc = ensure_stream_once(r, &retry, err, cap);
        if (!retry || base_mono_us() >= until)
            return rc;
        waiting(r, "the stream's configuration", err != NULL ? err : "", &logged);
        struct timespec ts = {0, 250 * 1000000};
        nanosleep(&ts, NULL);
    }
}

static int ensure_stream_once(repl_t *r, bool *retry, char *err, size_t cap)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    char why[256];
    natsStatus s = js_GetStreamInfo(&si, r->js, r->stream, NULL, &jerr);
    *retry = transient(s, jerr);
    if (s == NATS_OK) {
        int rc = check_stream(r, si->Config, err, cap);
        jsStreamInfo_Destroy(si);
        return rc;
    }
    if (s != NATS_NOT_FOUND) {
        repl__nats_text(s, jerr, why, sizeof why);
        return repl__fail(err, cap, -ETIMEDOUT, "stream %s: no answer from JetStream: %s",
                          r->stream, why);
    }
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char *subjects[] = {r->filter};
    cfg.Name = r->stream;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Retention = js_LimitsPolicy;
    cfg.Discard = js_DiscardOld;
    cfg.Replicas = r->o.replicas > 0 ? r->o.replicas : 1;
    cfg.MaxAge = r->o.max_age_s > 0 ? r->o.max_age_s * 1000000000ll : 0;
    cfg.MaxBytes = r->o.max_bytes > 0 ? r->o.max_bytes : -1;
    /* The duplicate window (retries with one request id apply once) is 2 minutes, or the
     * retention's age when shorter (JetStream refuses a longer one). */
    cfg.Duplicates =
        cfg.MaxAge > 0 && cfg.MaxAge < 120 * 1000000000ll ? cfg.MaxAge : 120 * 1000000000ll;
    s = js_AddStream(&si, r->js, &cfg, NULL, &jerr);
    *retry = transient(s, jerr);
    if (s == NATS_OK) {
        base_log(BASE_LOG_INFO, "stream_created", "{s:s, s:s, s:I}", "stream", r->stream,
                 "subjects", r->filter, "replicas", (json_int_t)cfg.Replicas);
        jsStreamInfo_Destroy(si);
        return 0;
    }
    repl__nats_text(s, jerr, why, sizeof why);
    if (jerr == JSStreamNameExistErr) {
        /* Created meanwhile by another node, differently. */
        return repl__fail(err, cap, -EEXIST, "stream %s exists with another configuration: %s",
                          r->stream, why);
    }
    return repl__fail(err, cap, jerr == JSStreamSubjectOverlapErr ? -EEXIST : -EIO,
                      "stream %s cannot be created: %s", r->stream, why);
}

int repl_open(const repl_options_t *o, const char *project, store_t *store, repl_t **out, char *err,
              size_t err_cap)
{
    if (o->urls == NULL || project == NULL)
        return repl__fail(err, err_cap, -EINVAL, "--replication needs NATS URLs");
    repl_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    r->o = *o;
    r->urls = strdup(o->urls);
    r->name = strdup(o->name != NULL ? o->name : "fstore");
    r->o.urls = r->urls;
    r->tls_ca = o->tls_ca != NULL ? strdup(o->tls_ca) : NULL;
    r->tls_cert = o->tls_cert != NULL ? strdup(o->tls_cert) : NULL;
    r->tls_key = o->tls_key != NULL ? strdup(o->tls_key) : NULL;
    r->o.tls_ca = r->tls_ca;
    r->o.tls_cert = r->tls_cert;
    r->o.tls_key = r->tls_key;
    if (r->o.publish_timeout_ms <= 0)
        r->o.publish_timeout_ms = REPL_DEFAULT_PUBLISH_TIMEOUT_MS;
    if (r->o.publish_threads == 0)
        r->o.publish_threads = REPL_DEFAULT_PUBLISH_THREADS;
    if (r->o.max_pending == 0)
        r->o.max_pending = REPL_DEFAULT_MAX_PENDING;
    if (r->o.apply_window == 0)
        r->o.apply_window = REPL_DEFAULT_APPLY_WINDOW;
    if (r->o.stall_ms <= 0)
        r->o.stall_ms = REPL_DEFAULT_STALL_MS;
    if (r->o.connect_timeout_ms <= 0)
        r->o.connect_timeout_ms = REPL_DEFAULT_CONNECT_TIMEOUT_MS;
    r->store = store;
    pthread_mutex_init(&r->mu, NULL);
    /* Writer-preferring: a reload waits for the NATS calls under way, not for every later one. */
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&r->conn_rw, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_cond_init(&r->q_cv, &ca);
    pthread_cond_init(&r->wd_cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = -ENOMEM;
    if (r->urls == NULL || r->name == NULL || (o->tls_ca != NULL && r->tls_ca == NULL) ||
        (o->tls_cert != NULL && r->tls_cert == NULL) || (o->tls_key != NULL && r->tls_key == NULL))
        goto fail;
    char up[56];
    upper_token(project, up, sizeof up);
    if (o->stream != NULL)
        snprintf(r->stream, sizeof r->stream, "%s", o->stream);
    else
        snprintf(r->stream, sizeof r->stream, "FSTORE_%s", up);
    if (o->subject_prefix != NULL)
        snprintf(r->prefix, sizeof r->prefix, "%s", o->subject_prefix);
    else
        snprintf(r->prefix, sizeof r->prefix, "fstore.%s", project);
    rc = -EINVAL;
    if (!valid_token(r->stream, false) || (o->stream != NULL && strlen(o->stream) >= 64)) {
        repl__fail(err, err_cap, rc,
                   "--stream '%s': want up to 63 printable characters, no "
                   "spaces, dots or wildcards",
                   o->stream != NULL ? o->stream : r->stream);
        goto fail;
    }
    if (!valid_token(r->prefix, true) ||
        (o->subject_prefix != NULL && strlen(o->subject_prefix) >= 200)) {
        repl__fail(err, err_cap, rc,
                   "--subject-prefix '%s': want dot-separated tokens without "
                   "spaces or wildcards",
                   r->prefix);
        goto fail;
    }
    snprintf(r->filter, sizeof r->filter, "%s.>", r->prefix);
    snprintf(r->catalog_subject, sizeof r->catalog_subject, "%s.$catalog", r->prefix);
    rc = connect_nats(r, err, err_cap);
    if (rc == 0)
        rc = ensure_stream(r, err, err_cap);
    if (rc == 0)
        rc = repl__publishers_start(r);
    if (rc < 0)
        goto fail;
    if (store != NULL) {
        rc = store_last_position(store, &r->applied);
        if (rc < 0) {
            repl__fail(err, err_cap, rc, "the store's position: %s", strerror(-rc));
            goto fail;
        }
        catalog_t *cat = NULL;
        if (store_applied_catalog(store, &cat) == 0)
            r->catalog = cat;
    }
    r->next = r->applied + 1;
    *out = r;
    return 0;
fail:
    repl_close(r);
    return rc;
}

/* Closes nc and destroys it once its closed callback has run (it runs on cnats's own thread
 * after Close returns, and sets *closed under mu), waiting up to 10 s. */
static void close_connection(repl_t *r, natsConnection *nc, bool *closed)
{
    pthread_mutex_lock(&r->mu);
    *closed = false;
    pthread_mutex_unlock(&r->mu);
    natsConnection_Close(nc);
    pthread_mutex_lock(&r->mu);
    int64_t until = base_mono_us() + 10 * 1000000ll;
    while (!*closed && base_mono_us() < until) {
        int64_t t = base_mono_us() + 100000;
        struct timespec ts = {t / 1000000, (t % 1000000) * 1000};
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    }
    pthread_mutex_unlock(&r->mu);
    natsConnection_Destroy(nc);
}

void repl_close(repl_t *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->closing = true;
    pthread_cond_broadcast(&r->cv);
    pthread_cond_broadcast(&r->q_cv);
    pthread_cond_broadcast(&r->wd_cv);
    pthread_mutex_unlock(&r->mu);
    repl__applier_stop(r);
    repl__publishers_stop(r);
    pthread_mutex_lock(&r->mu);
    repl__pub_t *left = repl__release_locked(r, true, 0);
    pthread_mutex_unlock(&r->mu);
    repl__complete(left, -ESHUTDOWN, "the server is shutting down");
    if (r->js != NULL)
        jsCtx_Destroy(r->js);
    if (r->nc != NULL)
        close_connection(r, r->nc, &r->nc_closed);
    live_remove(r); /* callbacks cnats still posts find nothing from here on */
    if (r->nopts != NULL)
        natsOptions_Destroy(r->nopts);
    catalog_unref(r->catalog);
    pthread_mutex_destroy(&r->mu);
    pthread_rwlock_destroy(&r->conn_rw);
    pthread_cond_destroy(&r->cv);
    pthread_cond_destroy(&r->q_cv);
    pthread_cond_destroy(&r->wd_cv);
    free(r->urls);
    free(r->name);
    free(r->tls_ca);
    free(r->tls_cert);
    free(r->tls_key);
    free(r);
}

/* ------------------------------------------------------------------------------------------ */
/* The log's catalog                                                                           */

int repl_log_catalog(repl_t *r, catalog_t **out, uint64_t *seq, char *err, size_t err_cap)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus s;
    int64_t wait_ms = r->o.publish_timeout_ms;
    if (r->store != NULL && !r->started && r->o.connect_timeout_ms > wait_ms)
        wait_ms = r->o.connect_timeout_ms;
    int64_t until = base_mono_us() + wait_ms * 1000, logged = 0;
    for (;;) {
        /* Two statements: jerr is read after the call that sets it (as one call's two
         * arguments, their order was the compiler's, and a 10008 was taken as final). */
        jsCtx *js = repl__conn_begin(r);
        s = js_GetLastMsg(&m, js, r->stream, r->catalog_subject, NULL, &jerr);
        repl__conn_end(r);
        if (!transient(s, jerr) || base_mono_us() >= until)
            break;
        char why[200];
        repl__nats_text(s, jerr, why, sizeof why);
        waiting(r, "the log's catalog", why, &logged);
        struct timespec ts = {0, 250 * 1000000};
        nanosleep(&ts, NULL);
        jerr = 0;
    }
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) {
        natsMsg_Destroy(m);
        return -ENOENT;
    }
    if (s != NATS_OK) {
        char why[200];
        repl__nats_text(s, jerr, why, sizeof why);
        return repl__fail(err, err_cap, -EAGAIN, "stream %s: the catalog could not be read: %s",
                          r->stream, why);
    }
    int rc = repl_msg_decode_catalog((const uint8_t *)natsMsg_GetData(m),
                                     (size_t)natsMsg_GetDataLength(m), out, err, err_cap);
    if (rc == 0)
        *seq = natsMsg_GetSequence(m);
    natsMsg_Destroy(m);
    return rc;
}

/* Publishes one message, retrying with its id (a JetStream election fails publishes for seconds)
 * for --publish-timeout-ms, or until deadline_us (base_mono_us(); 0 = none) when that is
 * sooner: a write whose caller has gone stops holding a publisher. */
static int publish_sync(repl_t *r, const char *what, const char *subject, const uint8_t *data,
                        size_t len, const char *msg_id, uint64_t expect_subject_seq,
                        bool expect_none, int64_t deadline_us, uint64_t *seq, char *err,
                        size_t err_cap)
{
    repl__conn_begin(r);
    int64_t max = natsConnection_GetMaxPayload(r->nc);
    repl__conn_end(r);
    if (max > 0 && (int64_t)len + 256 > max)
        return repl__fail(err, err_cap, -EMSGSIZE,
                          "the %s is %zu bytes encoded, over the log's %lld-byte message "
                          "limit (NATS max_payload)%s",
                          what, len, (long long)max,
                          strcmp(what, "write") == 0 ? ": split it into smaller writes" : "");
    int64_t until = base_mono_us() + r->o.publish_timeout_ms * 1000;
    bool by_deadline = deadline_us > 0 && deadline_us < until;
    if (by_deadline)
        until = deadline_us;
    /* Its caller has already been told DEADLINE_EXCEEDED (it waited in the queue past it): not
     * published at all, rather than landing in the log after the answer. */
    if (by_deadline && base_mono_us() >= until)
        return repl__fail(err, err_cap, -ETIMEDOUT,
                          "the %s's deadline passed before it could be published to stream "
                          "%s (nothing was published)",
                          what, r->stream);
    char why[256] = "";
    for (int attempt = 0;; attempt++) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = msg_id;
        /* Each wait for the acknowledgement: 2 s, or what is left before the deadline. */
        int64_t left_ms = (until - base_mono_us()) / 1000;
        po.MaxWait = left_ms < 2000 ? (left_ms > 100 ? left_ms : 100) : 2000;
        po.ExpectLastSubjectSeq = expect_subject_seq;
        po.ExpectNoMessage = expect_none;
        jsPubAck *pa = NULL;
        jsErrCode jerr = 0;
        jsCtx *js = repl__conn_begin(r);
        natsStatus s = js_Publish(&pa, js, subject, data, (int)len, &po, &jerr);
        repl__conn_end(r);
        if (s == NATS_OK) {
            *seq = pa->Sequence;
            jsPubAck_Destroy(pa);
            if (attempt > 0) {
                pthread_mutex_lock(&r->mu);
                r->publish_retries += (uint64_t)attempt;
                pthread_mutex_unlock(&r->mu);
            }
            return 0;
        }
        repl__nats_text(s, jerr, why, sizeof why);
        if (jerr == JSStreamWrongLastSequenceErr)
            return repl__fail(err, err_cap, -ESTALE, "stream %s: %s", r->stream, why);
        if (s == NATS_ERR && jerr != 0 && jerr != JSNotEnabledErr)
            return repl__fail(err, err_cap, -EIO, "stream %s refused the %s: %s", r->stream, what,
                              why);
        /* Timeouts, no responders (an election), a disconnect: the same id again. */
        if (base_mono_us() >= until)
            break;
        struct timespec ts = {0, (attempt < 4 ? 50 : 250) * 1000000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&r->mu);
        bool closing = r->closing;
        pthread_mutex_unlock(&r->mu);
        if (closing)
            break;
    }
    if (by_deadline)
        return repl__fail(err, err_cap, -EAGAIN,
                          "the replication log (stream %s) did not acknowledge the %s before "
                          "the call's deadline (it may still be in the log): %s",
                          r->stream, what, why);
    return repl__fail(err, err_cap, -EAGAIN,
                      "the replication log (stream %s) did not acknowledge the %s within "
                      "%lld ms: %s",
                      r->stream, what, (long long)r->o.publish_timeout_ms, why);
}

int repl__publish_sync_raw(repl_t *r, const char *what, const char *subject, const uint8_t *data,
                           size_t len, const char *msg_id, int64_t deadline_us, uint64_t *seq,
                           char *err, size_t err_cap)
{
    return publish_sync(r, what, subject, data, len, msg_id, 0, false, deadline_us, seq, err,
                        err_cap);
}

int repl_publish_catalog(repl_t *r, const catalog_t *c, uint64_t expect_seq, uint64_t *seq,
                         char *err, size_t err_cap)
{
    catalog_t *cur = NULL;
    uint64_t cur_seq = 0;
    int rc = repl_log_catalog(r, &cur, &cur_seq, err, err_cap);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    if (rc == 0) {
        bool same = strcmp(catalog_digest(cur), catalog_digest(c)) == 0;
        catalog_unref(cur);
        if (same) {
            *seq = cur_seq;
            return 0;
        }
        if (cur_seq != expect_seq)
            return repl__fail(err, err_cap, -ESTALE,
                              "the log's catalog changed (sequence %llu, planned against %llu): "
                              "plan again",
                              (unsigned long long)cur_seq, (unsigned long long)expect_seq);
    }
    uint8_t *data = NULL;
    size_t len = 0;
    rc = repl_msg_encode_catalog(c, &data, &len);
    if (rc < 0)
        return rc;
    char id[96];
    snprintf(id, sizeof id, "catalog:%s:%llu", catalog_digest(c), (unsigned long long)expect_seq);
    rc = publish_sync(r, "catalog", r->catalog_subject, data, len, id, expect_seq, expect_seq == 0,
                      0, seq, err, err_cap);
    free(data);
    if (rc == 0)
        base_log(BASE_LOG_INFO, "catalog_published", "{s:s, s:s, s:I}", "stream", r->stream,
                 "digest", catalog_digest(c), "sequence", (json_int_t)*seq);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Status and waits                                                                            */

repl_state_t repl_state(const repl_t *r)
{
    return atomic_load(&((repl_t *)r)->state);
}

void repl_status(repl_t *r, repl_status_t *out)
{
    memset(out, 0, sizeof *out);
    int64_t now_ns = (int64_t)time(NULL) * 1000000000ll;
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) == 0)
        now_ns = (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
    pthread_mutex_lock(&r->mu);
    out->state = r->state;
    out->connected = atomic_load(&r->connected);
    out->applied = r->applied;
    out->stream_last = r->stream_last > r->applied ? r->stream_last : r->applied;
    out->stream_first = r->stream_first;
    out->lag = out->stream_last - r->applied;
    out->lag_ms = out->lag > 0 && r->next_time_ns > 0 ? (now_ns - r->next_time_ns) / 1000000 : 0;
    if (out->lag_ms < 0)
        out->lag_ms = 0;
    out->target = r->target;
    out->resubscribes = r->resubscribes;
    out->skipped = r->skipped;
    out->published = r->published;
    out->publish_retries = r->publish_retries;
    out->tls_reloads = r->tls_reloads;
    out->tls_reloads_rejected = r->tls_reloads_rejected;
    out->pending = r->pending;
    snprintf(out->stream, sizeof out->stream, "%s", r->stream);
    snprintf(out->last_error, sizeof out->last_error, "%s", r->last_error);
    pthread_mutex_unlock(&r->mu);
}

int repl_wait(repl_t *r, uint64_t seq, int64_t deadline_us)
{
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    while (r->applied < seq) {
        if (r->state == REPL_NEEDS_SNAPSHOT || r->state == REPL_FAILED || r->closing ||
            (r->stream_last > 0 && seq > r->stream_last + 1000000)) {
            rc = -EAGAIN;
            break;
        }
        int64_t now = base_mono_us();
        if (now >= deadline_us) {
            rc = -ETIMEDOUT;
            break;
        }
        int64_t until = deadline_us < now + 100000 ? deadline_us : now + 100000;
        struct timespec ts = {until / 1000000, (until % 1000000) * 1000};
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

uint64_t repl_late_callbacks(void)
{
    pthread_mutex_lock(&live_mu);
    uint64_t n = live_late;
    pthread_mutex_unlock(&live_mu);
    return n;
}

void repl_library_close(void)
{
    nats_CloseAndWait(5000);
}

/* ------------------------------------------------------------------------------------------ */
/* TLS reloads: a new connection in the old one's place                                        */

jsCtx *repl__conn_begin(repl_t *r)
{
    pthread_rwlock_rdlock(&r->conn_rw);
    return r->js;
}

void repl__conn_end(repl_t *r)
{
    pthread_rwlock_unlock(&r->conn_rw);
}

/* Closes a connection that is no longer r->nc (close_connection()). */
static void close_replaced(repl_t *r, natsConnection *nc)
{
    close_connection(r, nc, &r->old_nc_closed);
}

/* cnats 3.4.1 reads the certificates into each connection's own TLS context when it is made, and
 * its reconnects reuse that context: new files take a new connection. Made and proven first
 * (connected, the stream answering), it then replaces the old one between two NATS calls.
 * Returns: 0; -EINVAL (the files do not load), -ECONNREFUSED, -EIO, -ENOMEM, -ESHUTDOWN (closing);
 * err says why. */
static int tls_swap(repl_t *r, char *err, size_t cap)
{
    natsOptions *no = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    int rc = make_options(r, &no, err, cap);
    if (rc < 0)
        return rc;
    natsStatus s = natsConnection_Connect(&nc, no);
    if (s != NATS_OK) {
        char why[300];
        repl__nats_text(s, 0, why, sizeof why);
        natsOptions_Destroy(no);
        return repl__fail(err, cap, -ECONNREFUSED, "no NATS server at %s took the new files: %s",
                          r->urls, why);
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    s = natsConnection_JetStream(&js, nc, &jo);
    if (s == NATS_OK)
        s = js_GetStreamInfo(&si, js, r->stream, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK) {
        char why[300];
        repl__nats_text(s, jerr, why, sizeof why);
        rc = repl__fail(err, cap, -EIO, "stream %s over the new connection: %s", r->stream, why);
    }
    pthread_mutex_lock(&r->mu);
    if (rc == 0 && r->closing)
        rc = repl__fail(err, cap, -ESHUTDOWN, "closing");
    pthread_mutex_unlock(&r->mu);
    if (rc < 0) {
        if (js != NULL)
            jsCtx_Destroy(js);
        close_replaced(r, nc);
        natsOptions_Destroy(no);
        return rc;
    }
    repl__unsubscribe(r);
    /* Between two NATS calls: a call under way finishes on the old connection, and the calls
     * that wait meanwhile (at most that long) go to the new one. */
    pthread_rwlock_wrlock(&r->conn_rw);
    pthread_mutex_lock(&r->mu);
    natsConnection *old_nc = r->nc;
    jsCtx *old_js = r->js;
    natsOptions *old_no = r->nopts;
    r->nc = nc;
    r->js = js;
    r->nopts = no;
    atomic_store(&r->connected, natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED);
    pthread_mutex_unlock(&r->mu);
    pthread_rwlock_unlock(&r->conn_rw);
    /* The consumer at once on the new connection (the watchdog retries if this fails), then
     * the old connection's end, which may take its server a while. */
    if (repl__subscribe(r, "the TLS files changed") < 0) {
        pthread_mutex_lock(&r->mu);
        r->resubscribe = true;
        pthread_mutex_unlock(&r->mu);
    }
    jsCtx_Destroy(old_js);
    close_replaced(r, old_nc);
    natsOptions_Destroy(old_no);
    return 0;
}

void repl__tls_tick(repl_t *r, int64_t now_us)
{
    if (r->tls_ca == NULL && r->tls_cert == NULL)
        return;
    bool asked = atomic_exchange(&r->tls_check_now, false);
    if (!asked && now_us - r->tls_checked_us < 2000000)
        return;
    r->tls_checked_us = now_us;
    struct repl__file_id ids[3];
    tls_ids(r, ids);
    bool retry = r->tls_retry_us != 0;
    if (same_ids(ids, r->tls_seen) && !(retry && (asked || now_us >= r->tls_retry_us)))
        return;
    /* Taken as seen before it is read: a file that changes again meanwhile is read again. */
    memcpy(r->tls_seen, ids, sizeof ids);
    char err[512] = "";
    int rc = tls_swap(r, err, sizeof err);
    if (rc == -ESHUTDOWN)
        return;
    /* Files that load and a log that did not take them (down, electing): tried again in 30 s
     * (at once on SIGHUP); files that do not load wait for their next change. */
    r->tls_retry_us = rc == 0 || rc == -EINVAL ? 0 : now_us + 30000000;
    pthread_mutex_lock(&r->mu);
    if (rc == 0)
        r->tls_reloads++;
    else
        r->tls_reloads_rejected++;
    pthread_mutex_unlock(&r->mu);
    if (rc == 0)
        base_log(BASE_LOG_INFO, "nats_tls_reloaded", "{s:s, s:s?, s:s?, s:s?}", "stream", r->stream,
                 "ca", r->tls_ca, "cert", r->tls_cert, "key", r->tls_key);
    else
        base_log(BASE_LOG_ERROR, "nats_tls_reload_rejected", "{s:s, s:s, s:s}", "stream", r->stream,
                 "error", err, "note",
                 rc == -EINVAL ? "the connection made with the previous files goes on"
                               : "the connection made with the previous files goes on; "
                                 "tried again in 30 s");
}

void repl_reload_tls(repl_t *r)
{
    atomic_store(&r->tls_check_now, true);
    pthread_mutex_lock(&r->mu);
    pthread_cond_broadcast(&r->wd_cv);
    pthread_mutex_unlock(&r->mu);
}
