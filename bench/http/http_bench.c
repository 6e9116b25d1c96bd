/* bench/http/http_bench.c - fstore-http-bench: HTTP/1.1 keep-alive load, closed or open loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/loadgen/hist_int.h"

/*
 * One thread, epoll over --connections keep-alive connections, one request in flight on each
 * (no pipelining; answers of any size, their bodies counted and dropped). Closed loop (no --rate):
 * a connection sends its next request as soon as the answer is in. Open loop (--rate R): requests
 * are due at 1/R intervals from the start; a due request goes out on an idle connection, or waits
 * for one, and its latency counts from when it was due (so a slow answer cannot hide the requests
 * it delayed). Every answer must be "HTTP/1.1 200" with a Content-Length; anything else is counted
 * as failed. Prints JSON.
 */

typedef struct conn {
    int fd;
    bool busy;
    int64_t due_ns;
    char buf[1 << 16]; /* the answer's head (bodies are counted, not kept) */
    size_t len;
    size_t seen;  /* bytes of the answer received */
    size_t total; /* head + Content-Length, once the head is in (0 before) */
    bool ok;      /* the head said 200 */
} conn_t;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static const char *arg(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    }
    return def;
}

static char *request;
static size_t request_len;

static int connect_to(const char *target)
{
    char host[64];
    const char *colon = strrchr(target, ':');
    if (colon == NULL || (size_t)(colon - target) >= sizeof host)
        return -1;
    memcpy(host, target, (size_t)(colon - target));
    host[colon - target] = '\0';
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static bool send_all(conn_t *c)
{
    size_t off = 0;
    while (off < request_len) {
        ssize_t n = write(c->fd, request + off, request_len - off);
        if (n < 0 && errno == EAGAIN)
            continue; /* small requests: the socket buffer takes them at once */
        if (n <= 0)
            return false;
        off += (size_t)n;
    }
    c->busy = true;
    c->len = c->seen = c->total = 0;
    return true;
}

/* The whole answer in? Returns: 1 (ok), 2 (complete, not 200), 0 (more to read), -1. */
static int answer_done(conn_t *c)
{
    if (c->total == 0) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end == NULL)
            return c->len == sizeof c->buf ? -1 : 0;
        size_t head = (size_t)(end - c->buf) + 4;
        char *cl = memmem(c->buf, head, "Content-Length:", 15);
        if (cl == NULL)
            cl = memmem(c->buf, head, "content-length:", 15);
        c->total = head + (cl != NULL ? strtoul(cl + 15, NULL, 10) : 0);
        c->ok = strncmp(c->buf, "HTTP/1.1 200", 12) == 0;
    }
    /* The body is only counted: the buffer is free for what comes next. */
    c->len = 0;
    if (c->seen < c->total)
        return 0;
    return c->seen == c->total ? (c->ok ? 1 : 2) : -1;
}

int main(int argc, char **argv)
{
    const char *target = arg(argc, argv, "--target", NULL);
    const char *path = arg(argc, argv, "--path", "/health");
    const char *body_file = arg(argc, argv, "--body-file", NULL);
    int n_conns = atoi(arg(argc, argv, "--connections", "8"));
    double duration = atof(arg(argc, argv, "--duration", "10"));
    double warmup = atof(arg(argc, argv, "--warmup", "1"));
    double rate = atof(arg(argc, argv, "--rate", "0"));
    const char *label = arg(argc, argv, "--label", "");
    if (target == NULL || n_conns <= 0 || n_conns > 4096) {
        fprintf(stderr, "usage: fstore-http-bench --target HOST:PORT [--path P] [--body-file F] "
                        "[--connections N] [--duration S] [--warmup S] [--rate R] [--label L]\n");
        return 2;
    }
    char *body = NULL;
    size_t body_len = 0;
    if (body_file != NULL) {
        FILE *f = fopen(body_file, "rb");
        if (f == NULL) {
            perror(body_file);
            return 1;
        }
        fseek(f, 0, SEEK_END);
        body_len = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        body = malloc(body_len + 1);
        if (fread(body, 1, body_len, f) != body_len)
            return 1;
        fclose(f);
    }
    request = malloc(body_len + 512);
    if (body != NULL)
        request_len = (size_t)sprintf(request,
                                      "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                                      "application/json\r\nContent-Length: %zu\r\n\r\n",
                                      path, target, body_len);
    else
        request_len = (size_t)sprintf(request, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, target);
    memcpy(request + request_len, body, body_len);
    request_len += body_len;

    int ep = epoll_create1(0);
    conn_t *conns = calloc((size_t)n_conns, sizeof *conns);
    for (int i = 0; i < n_conns; i++) {
        conns[i].fd = connect_to(target);
        if (conns[i].fd < 0) {
            fprintf(stderr, "cannot connect to %s\n", target);
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }
    hist_t h;
    hist_reset(&h);
    uint64_t ok = 0, failed = 0, late = 0;
    int64_t t0 = now_ns(), t_measure = t0 + (int64_t)(warmup * 1e9),
            t_end = t_measure + (int64_t)(duration * 1e9);
    int64_t interval = rate > 0 ? (int64_t)(1e9 / rate) : 0;
    int64_t next_due = t0;
    /* Due requests waiting for an idle connection (open loop): their due times, FIFO. */
    size_t cap = 1 << 20, q_head = 0, q_len = 0;
    int64_t *queue = rate > 0 ? malloc(cap * sizeof *queue) : NULL;
    if (rate <= 0) {
        for (int i = 0; i < n_conns; i++) {
            conns[i].due_ns = now_ns();
            send_all(&conns[i]);
        }
    }
    struct epoll_event evs[256];
    for (;;) {
        int64_t now = now_ns();
        if (now >= t_end)
            break;
        if (rate > 0) {
            while (next_due <= now && next_due < t_end && q_len < cap) {
                queue[(q_head + q_len++) % cap] = next_due;
                next_due += interval;
            }
            for (int i = 0; i < n_conns && q_len > 0; i++) {
                if (conns[i].busy)
                    continue;
                conns[i].due_ns = queue[q_head];
                q_head = (q_head + 1) % cap;
                q_len--;
                if (now - conns[i].due_ns > 1000000)
                    late++;
                if (!send_all(&conns[i]))
                    failed++;
            }
        }
        int timeout_ms = 1;
        if (rate > 0) {
            int64_t wait = (next_due - now_ns()) / 1000000;
            timeout_ms = wait < 0 ? 0 : wait > 1 ? 1 : (int)wait;
        }
        int n = epoll_wait(ep, evs, 256, rate > 0 ? timeout_ms : 100);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                fprintf(stderr, "connection closed by the server\n");
                return 1;
            }
            c->len += (size_t)r;
            c->seen += (size_t)r;
            int st = answer_done(c);
            if (st == 0)
                continue;
            int64_t done = now_ns();
            if (c->due_ns >= t_measure && c->due_ns < t_end) {
                if (st == 1) {
                    ok++;
                    hist_record(&h, (uint64_t)(done - c->due_ns));
                } else {
                    failed++;
                }
            }
            c->busy = false;
            if (st < 0) {
                fprintf(stderr, "unparsable answer\n");
                return 1;
            }
            if (rate <= 0) {
                c->due_ns = now_ns();
                send_all(c);
            }
        }
    }
    printf("{\"label\": \"%s\", \"path\": \"%s\", \"connections\": %d, \"rate_target\": %.1f, "
           "\"rps\": %.1f, \"ok\": %llu, \"failed\": %llu, \"late\": %llu, \"p50_us\": %.1f, "
           "\"p99_us\": %.1f, \"max_us\": %.1f}\n",
           label, path, n_conns, rate, (double)ok / duration, (unsigned long long)ok,
           (unsigned long long)failed, (unsigned long long)late,
           (double)hist_percentile(&h, 50) / 1e3, (double)hist_percentile(&h, 99) / 1e3,
           (double)hist_percentile(&h, 100) / 1e3);
    return failed > 0 ? 1 : 0;
}
