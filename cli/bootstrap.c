/* cli/bootstrap.c - `fstore serve --bootstrap-from PEER`: a new node's store copied from a peer. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli_int.h"
#include "clients/c/fstore_client.h"

#include <grpc/grpc.h>

/*
 * Runs before the store opens: when --data-dir holds no store yet, asks the peer for a
 * snapshot (BeginSnapshot: a consistent copy and the log sequence it holds), reads it in 4 MiB
 * chunks into data.mdb.part, syncs it and renames it into place; the replica then replays the
 * log from the next sequence. A data directory that already has a store is left alone: a node
 * that restarts resumes from its own position. No ready peer within wait_ms (the first nodes of a
 * new cluster) is not an error: the node then replays the log from its start, and if retention
 * dropped that start it says it needs a snapshot and does not serve.
 */

#define CHUNK (4u << 20)
#define FETCHERS 3

typedef struct fetch {
    fstore_client_t *cl;
    const char *id, *peer;
    uint64_t size;
    int fd;
    pthread_mutex_t mu;
    uint64_t next; /* the next chunk's offset */
    int rc;        /* the first failure */
} fetch_t;

static int call(fstore_client_t *cl, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **out,
                fstore_status_t *st)
{
    size_t n = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(n + 1);
    if (buf == NULL)
        return -ENOMEM;
    protobuf_c_message_pack(req, buf);
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    int rc = fstore_client_call(cl, method, buf, n, 60000, &resp, &resp_len, st);
    free(buf);
    if (rc < 0)
        return rc;
    *out = protobuf_c_message_unpack(resp_desc, NULL, resp_len, resp);
    free(resp);
    return *out != NULL ? 0 : -EPROTO;
}

static void *fetcher(void *arg)
{
    fetch_t *f = arg;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        uint64_t off = f->next;
        bool stop = f->rc < 0 || off >= f->size;
        f->next += CHUNK;
        pthread_mutex_unlock(&f->mu);
        if (stop)
            return NULL;
        Fstore__V1__ReadSnapshotRequest rreq = FSTORE__V1__READ_SNAPSHOT_REQUEST__INIT;
        rreq.snapshot_id = (char *)f->id;
        rreq.offset = off;
        rreq.max_bytes = CHUNK;
        Fstore__V1__ReadSnapshotResponse *chunk = NULL;
        fstore_status_t st = {0};
        int rc =
            call(f->cl, "/fstore.v1.OnlineFeatureService/ReadSnapshot", &rreq.base,
                 &fstore__v1__read_snapshot_response__descriptor, (ProtobufCMessage **)&chunk, &st);
        uint64_t want = f->size - off < CHUNK ? f->size - off : CHUNK;
        if (rc == 0 && chunk->data.len != want)
            rc = -EPROTO; /* the copy is not what was announced */
        for (size_t done = 0; rc == 0 && done < chunk->data.len;) {
            ssize_t w =
                pwrite(f->fd, chunk->data.data + done, chunk->data.len - done, (off_t)(off + done));
            if (w < 0)
                rc = -errno;
            else
                done += (size_t)w;
        }
        if (chunk != NULL)
            protobuf_c_message_free_unpacked(&chunk->base, NULL);
        if (rc < 0) {
            pthread_mutex_lock(&f->mu);
            if (f->rc == 0) {
                f->rc = rc;
                base_log(BASE_LOG_ERROR, "bootstrap_failed", "{s:s, s:I, s:s}", "peer", f->peer,
                         "offset", (json_int_t)off, "error",
                         rc == -EREMOTEIO ? st.message : strerror(-rc));
            }
            pthread_mutex_unlock(&f->mu);
            return NULL;
        }
    }
}

static int fetch(fstore_client_t *cl, const char *peer, const char *dir)
{
    fstore_status_t st = {0};
    Fstore__V1__BeginSnapshotRequest breq = FSTORE__V1__BEGIN_SNAPSHOT_REQUEST__INIT;
    Fstore__V1__BeginSnapshotResponse *begin = NULL;
    int rc =
        call(cl, "/fstore.v1.OnlineFeatureService/BeginSnapshot", &breq.base,
             &fstore__v1__begin_snapshot_response__descriptor, (ProtobufCMessage **)&begin, &st);
    if (rc < 0) {
        base_log(BASE_LOG_ERROR, "bootstrap_failed", "{s:s, s:s}", "peer", peer, "error",
                 rc == -EREMOTEIO ? st.message : strerror(-rc));
        return rc;
    }
    char part[4200], final[4200];
    snprintf(part, sizeof part, "%s/data.mdb.part", dir);
    snprintf(final, sizeof final, "%s/data.mdb", dir);
    int fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        base_log(BASE_LOG_ERROR, "bootstrap_failed", "{s:s, s:s}", "path", part, "error",
                 strerror(errno));
        goto end;
    }
    int64_t t0 = base_mono_us();
    /* FETCHERS chunks in flight at once, each written at its own offset: the copy, the packing
     * and the writing of one overlap the others'. */
    fetch_t f = {.cl = cl,
                 .id = begin->snapshot_id,
                 .size = begin->size_bytes,
                 .fd = fd,
                 .peer = peer,
                 .mu = PTHREAD_MUTEX_INITIALIZER};
    pthread_t th[FETCHERS];
    int started = 0;
    for (int i = 0; i < FETCHERS; i++)
        started += pthread_create(&th[i], NULL, fetcher, &f) == 0;
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    rc = started == 0 ? -ENOMEM : f.rc;
    uint64_t off = f.size;
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(part, final) < 0)
        rc = -errno;
    if (rc < 0) {
        unlink(part);
    } else {
        base_log(BASE_LOG_INFO, "bootstrapped", "{s:s, s:I, s:I, s:I}", "peer", peer, "bytes",
                 (json_int_t)off, "sequence", (json_int_t)begin->sequence, "ms",
                 (json_int_t)((base_mono_us() - t0) / 1000));
    }
end:;
    Fstore__V1__EndSnapshotRequest ereq = FSTORE__V1__END_SNAPSHOT_REQUEST__INIT;
    ereq.snapshot_id = begin->snapshot_id;
    Fstore__V1__EndSnapshotResponse *e = NULL;
    if (call(cl, "/fstore.v1.OnlineFeatureService/EndSnapshot", &ereq.base,
             &fstore__v1__end_snapshot_response__descriptor, (ProtobufCMessage **)&e, &st) == 0)
        protobuf_c_message_free_unpacked(&e->base, NULL);
    protobuf_c_message_free_unpacked(&begin->base, NULL);
    return rc;
}

int cli__bootstrap(const char *dir, const char *peer, int wait_ms)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    struct stat sb;
    if (stat(path, &sb) == 0) {
        base_log(BASE_LOG_INFO, "bootstrap_skipped", "{s:s, s:s}", "data_dir", dir, "reason",
                 "the data directory has a store: it resumes from its own position");
        return 0;
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        base_log(BASE_LOG_ERROR, "bootstrap_failed", "{s:s, s:s}", "data_dir", dir, "error",
                 strerror(errno));
        return -errno;
    }
    fstore_grpc_init();
    fstore_client_t *cl = NULL;
    int rc = fstore_client_connect(peer, &cl);
    if (rc == 0) {
        base_log(BASE_LOG_INFO, "bootstrap_waiting", "{s:s, s:i}", "peer", peer, "timeout_ms",
                 wait_ms);
        if (fstore_client_wait_serving(cl, wait_ms) < 0) {
            base_log(BASE_LOG_WARN, "bootstrap_skipped", "{s:s, s:s}", "peer", peer, "reason",
                     "no ready peer answered in time: replaying the log from its start");
            fstore_client_close(cl);
            grpc_shutdown();
            return 0;
        }
        rc = fetch(cl, peer, dir);
    }
    fstore_client_close(cl);
    grpc_shutdown();
    return rc;
}
