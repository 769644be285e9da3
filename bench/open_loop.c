/* Open-loop HTTP load at a fixed rate, wrk2's model; bench/wrk_bench.py builds and runs it.

    gcc -O2 -o .data/bench/open_loop bench/open_loop.c
    .data/bench/open_loop URL --rate 2000 [--seconds 10] [--warmup 2] [--connections 8]
        [--timeout 10] [--header 'Authorization: Bearer …'] [--timeline FILE]

Request i is due at start + i / rate and goes out on the first free connection of a pool of
--connections (wrk2's -c). Its latency runs from when it was *due*, not from when it was sent:
when every connection is busy, the requests falling due wait, and that wait counts (no
coordinated omission, which a closed loop such as wrk's hides). HTTP/1.1 keep-alive; when the
server closes a connection after its response (gunicorn's sync workers close every one), the
next request on that slot opens a new one, and the connect is part of its latency. A response
ends with its Content-Length, its last chunk, or the connection's end.

One thread, non-blocking sockets, epoll; the timer is epoll_pwait2's timeout on
CLOCK_MONOTONIC. Prints one line ``OPEN_LOOP {json}``: the rate asked and achieved, latency
p50 / p90 / p99 / max (ms, from the due time, measured period only), the generator's own lag
(from when a request could go, due and a connection free, to when it went), errors (socket
errors, timeouts, and requests never sent by the end) and non-2xx responses, and the CPU the
generator used (getrusage: it shares the machine with the server). --timeline FILE also writes
each measured request as a line "due sent done status" (seconds from the measured period's
start): where in the run the slow ones were, to set beside the server's own logs.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 16384

enum state { IDLE, SENDING, READING };
enum body { HEAD, BY_LENGTH, CHUNK_SIZE, CHUNK_DATA, CHUNK_END, TRAILER, TO_CLOSE };

struct conn {
    int fd;            /* -1 when closed */
    unsigned watching; /* the epoll events asked for, 0 before it is added */
    int reused;        /* the request went out on a connection that answered one before */
    int measured;      /* the request is past the warm-up */
    enum state state;
    double due, sent, free_at;
    size_t written, received;
    /* the response */
    char head[HEAD_MAX];
    size_t head_len;
    int status, keep;
    enum body body;
    long long left; /* bytes of the body (or of the current chunk) still to come */
    int chunk_ext, line_len;
};

static struct {
    const char *url, *headers[64], *timeline;
    int n_headers, connections;
    double rate, seconds, warmup, timeout;
} opt = {.connections = 8, .seconds = 10, .warmup = 2, .timeout = 10};

static struct addrinfo *addr;
static char *request;
static size_t request_len;
static int epfd;
static double clock0, measured_from;
static FILE *timeline;
static const char *problem; /* why the current failure: set by the parser */

static struct conn *conns;
static int *free_ring, free_head, free_count; /* free slots, the longest free first */
static double *latencies, *lags;
static size_t n_latencies, n_lags, cap_latencies, cap_lags;
static long long non2xx, timeouts;
static char sample[256];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9 - clock0;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("open_loop: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void push(double **values, size_t *n, size_t *cap, double value)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 65536;
        *values = realloc(*values, *cap * sizeof **values);
        if (!*values)
            die("out of memory");
    }
    (*values)[(*n)++] = value;
}

static void note(const char *fmt, ...)
{
    if (sample[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sample, sizeof sample, fmt, ap);
    va_end(ap);
}

static void slot_free(struct conn *c, double t)
{
    c->state = IDLE;
    c->free_at = t;
    free_ring[(free_head + free_count++) % opt.connections] = (int)(c - conns);
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd); /* leaves the epoll set with it */
    c->fd = -1;
    c->watching = 0;
}

/* What epoll should wake us for on this connection: EPOLLOUT while the request cannot all be
   sent yet (connecting, or a full send buffer), EPOLLIN after. */
static void watch(struct conn *c, unsigned events)
{
    if (c->watching == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(epfd, c->watching ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    c->watching = events;
}

/* A socket error or a timeout: the request is lost (counted at the end), the slot is free. */
static void fail(struct conn *c, const char *what, const char *why)
{
    if (c->measured)
        note("%s: %s", what, why);
    conn_close(c);
    slot_free(c, now());
}

static void begin(struct conn *c);

/* A kept connection that the server closed before it read our request (it closes idle ones):
   the request goes again on a new connection, once. */
static int retried(struct conn *c)
{
    if (!c->reused || c->received > 0)
        return 0;
    conn_close(c);
    begin(c);
    return 1;
}

/* Send what is left of the request. On a connection still being made, send() waits for it
   (EAGAIN) or reports its failure, so a connect that completed at once costs no wake-up. */
static void send_rest(struct conn *c)
{
    c->state = SENDING;
    while (c->written < request_len) {
        ssize_t n = send(c->fd, request + c->written, request_len - c->written, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            watch(c, EPOLLOUT);
            return;
        }
        if (n < 0) {
            if (!retried(c))
                fail(c, c->written ? "write" : "connect or write", strerror(errno));
            return;
        }
        c->written += (size_t)n;
    }
    c->state = READING;
    watch(c, EPOLLIN);
}

/* Send the slot's request, on its open connection or a new one. */
static void begin(struct conn *c)
{
    c->written = c->received = c->head_len = 0;
    c->body = HEAD;
    c->reused = c->fd >= 0;
    if (c->fd < 0) {
        c->fd = socket(addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
            fail(c, "socket", strerror(errno));
            return;
        }
        if (connect(c->fd, addr->ai_addr, addr->ai_addrlen) < 0 && errno != EINPROGRESS) {
            fail(c, "connect", strerror(errno));
            return;
        }
    }
    send_rest(c);
}

static int header_is(const char *line, const char *name, const char **value)
{
    size_t len = strlen(name);
    if (strncasecmp(line, name, len) != 0 || line[len] != ':')
        return 0;
    for (*value = line + len + 1; **value == ' ' || **value == '\t'; (*value)++)
        ;
    return 1;
}

static int malformed(const char *why)
{
    problem = why;
    return -1;
}

/* The head is complete (head_len bytes, ending in CRLF CRLF): status, framing, keep-alive. */
static int parse_head(struct conn *c)
{
    char *line = c->head, *end;
    c->head[c->head_len - 2] = '\0'; /* the last line keeps its CRLF, the empty one goes */
    if (strncmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ')
        return malformed("bad status line");
    if (sscanf(line + 9, "%3d", &c->status) != 1)
        return malformed("bad status line");
    int http10 = line[7] == '0', close_asked = 0, keep_asked = 0, chunked = 0;
    long long length = -1;
    end = strstr(line, "\r\n");
    *end = '\0';
    for (line = end + 2; (end = strstr(line, "\r\n")) != NULL; line = end + 2) {
        *end = '\0';
        const char *value;
        if (header_is(line, "content-length", &value)) {
            char *rest;
            length = strtoll(value, &rest, 10);
            if (rest == value || length < 0)
                return malformed("bad Content-Length");
        } else if (header_is(line, "transfer-encoding", &value)) {
            chunked = strcasestr(value, "chunked") != NULL;
        } else if (header_is(line, "connection", &value)) {
            close_asked |= strcasestr(value, "close") != NULL;
            keep_asked |= strcasestr(value, "keep-alive") != NULL;
        }
    }
    c->keep = http10 ? keep_asked && !close_asked : !close_asked;
    c->left = 0;
    if (c->status == 204 || c->status == 304 || (c->status >= 100 && c->status < 200)) {
        c->body = BY_LENGTH;
    } else if (chunked) {
        c->body = CHUNK_SIZE;
        c->chunk_ext = 0;
    } else if (length >= 0) {
        c->body = BY_LENGTH;
        c->left = length;
    } else {
        c->body = TO_CLOSE; /* the body runs to the end of the connection */
        c->keep = 0;
    }
    return 0;
}

/* Take bytes of the response: 1 when it is complete, 0 for more, -1 when it is malformed. */
static int feed(struct conn *c, const char *data, size_t n)
{
    while (n > 0 || (c->body == BY_LENGTH && c->left == 0)) {
        switch (c->body) {
        case HEAD: {
            size_t from = c->head_len > 3 ? c->head_len - 3 : 0;
            size_t take = n < HEAD_MAX - c->head_len ? n : HEAD_MAX - c->head_len;
            memcpy(c->head + c->head_len, data, take);
            c->head_len += take;
            char *end = memmem(c->head + from, c->head_len - from, "\r\n\r\n", 4);
            if (!end) {
                if (c->head_len == HEAD_MAX)
                    return malformed("response head too large");
                return 0;
            }
            size_t used = (size_t)(end + 4 - c->head) - (c->head_len - take);
            data += used, n -= used;
            c->head_len = (size_t)(end + 4 - c->head);
            if (parse_head(c) < 0)
                return -1;
            if (c->status >= 100 && c->status < 200 && c->status != 101)
                c->head_len = 0, c->body = HEAD; /* an interim response: the real one follows */
            break;
        }
        case BY_LENGTH:
            if ((long long)n >= c->left)
                return 1; /* anything after it is not ours */
            c->left -= (long long)n;
            return 0;
        case TO_CLOSE:
            return 0;
        case CHUNK_SIZE: /* hex size [; extension] CRLF */
            for (; n > 0 && c->body == CHUNK_SIZE; data++, n--) {
                char ch = *data;
                int digit = ch >= '0' && ch <= '9' ? ch - '0'
                          : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                          : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
                if (ch == '\n')
                    c->body = c->left ? CHUNK_DATA : TRAILER, c->line_len = 0;
                else if (c->chunk_ext || ch == '\r' || ch == ' ' || ch == '\t')
                    ;
                else if (ch == ';')
                    c->chunk_ext = 1;
                else if (digit >= 0 && c->left < (1LL << 56))
                    c->left = 16 * c->left + digit;
                else
                    return malformed("bad chunk size");
            }
            break;
        case CHUNK_DATA: {
            size_t take = (long long)n < c->left ? n : (size_t)c->left;
            data += take, n -= take, c->left -= (long long)take;
            if (c->left == 0)
                c->body = CHUNK_END;
            break;
        }
        case CHUNK_END: /* the CRLF after a chunk's data */
            for (; n > 0 && c->body == CHUNK_END; data++, n--)
                if (*data == '\n')
                    c->body = CHUNK_SIZE, c->chunk_ext = 0;
            break;
        case TRAILER: /* header lines, then an empty one */
            for (; n > 0; data++, n--) {
                if (*data == '\n' && c->line_len == 0)
                    return 1;
                c->line_len = *data == '\n' ? 0 : c->line_len + (*data != '\r');
            }
            break;
        }
    }
    return 0;
}

static void complete(struct conn *c)
{
    double t = now();
    if (c->measured) {
        push(&latencies, &n_latencies, &cap_latencies, t - c->due);
        if (timeline)
            fprintf(timeline, "%.6f %.6f %.6f %d\n", c->due - measured_from,
                    c->sent - measured_from, t - measured_from, c->status);
        if (c->status < 200 || c->status > 299) {
            non2xx++;
            c->head[strcspn(c->head, "\r\n")] = '\0';
            note("%s", c->head);
        }
    }
    if (!c->keep)
        conn_close(c);
    slot_free(c, t);
}

static void on_event(struct conn *c)
{
    static char buffer[65536];
    if (c->state == SENDING) {
        send_rest(c);
        return;
    }
    ssize_t n = recv(c->fd, buffer, sizeof buffer, 0);
    if (c->state == IDLE) { /* the server closed a kept connection, or sent what we never asked */
        if (n != -1 || errno != EAGAIN)
            conn_close(c);
        return;
    }
    if (n > 0) {
        c->received += (size_t)n;
        int done = feed(c, buffer, (size_t)n);
        if (done < 0)
            fail(c, "response", problem);
        else if (done > 0)
            complete(c);
    } else if (n == 0) {
        if (c->body == TO_CLOSE)
            complete(c);
        else if (!retried(c))
            fail(c, "read", c->received ? "closed inside a response" : "closed before one");
    } else if (errno != EAGAIN && !retried(c)) {
        fail(c, "read", strerror(errno));
    }
}

/* ceil() for x >= 0, without libm */
static long long ceiling(double x)
{
    long long i = (long long)x;
    return i + (x > (double)i);
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const double *sorted, size_t n, double q)
{
    if (n == 0)
        return 0;
    long long i = ceiling(q / 100 * (double)n) - 1;
    return sorted[i < 0 ? 0 : i];
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
           + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void parse_args(int argc, char **argv)
{
    static const char usage[] =
        "usage: open_loop URL --rate R [--seconds 10] [--warmup 2] [--connections 8] "
        "[--timeout 10] [--header 'Name: value']... [--timeline FILE]";
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i], *value = NULL, *eq;
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            puts(usage);
            exit(0);
        }
        if (strncmp(arg, "--", 2) != 0) {
            opt.url = arg;
            continue;
        }
        if ((eq = strchr(arg, '=')) != NULL)
            *eq = '\0', value = eq + 1;
        else if (i + 1 < argc)
            value = argv[++i];
        else
            die("%s needs a value\n%s", arg, usage);
        char *end;
        double number = strtod(value, &end);
        int numeric = end != value && *end == '\0';
        if (strcmp(arg, "--header") == 0) {
            if (opt.n_headers == 64)
                die("too many --header");
            opt.headers[opt.n_headers++] = value;
            continue;
        }
        if (strcmp(arg, "--timeline") == 0) {
            opt.timeline = value;
            continue;
        }
        if (!numeric || number < 0)
            die("%s: not a number: %s", arg, value);
        if (strcmp(arg, "--rate") == 0)
            opt.rate = number;
        else if (strcmp(arg, "--seconds") == 0)
            opt.seconds = number;
        else if (strcmp(arg, "--warmup") == 0)
            opt.warmup = number;
        else if (strcmp(arg, "--timeout") == 0)
            opt.timeout = number;
        else if (strcmp(arg, "--connections") == 0 && number >= 1 && number == (int)number)
            opt.connections = (int)number;
        else
            die("unknown option or bad value: %s\n%s", arg, usage);
    }
    if (!opt.url || opt.rate <= 0)
        die("%s", usage);
}

/* http://host[:port][/path][?query] → the address and the request's bytes. */
static void prepare(void)
{
    const char *rest = opt.url, *slash;
    if (strncmp(rest, "http://", 7) != 0)
        die("only http:// URLs: %s", opt.url);
    rest += 7;
    slash = strchr(rest, '/');
    const char *path = slash ? slash : "/";
    int netloc_len = slash ? (int)(slash - rest) : (int)strlen(rest);
    char netloc[256], host[256], port[16] = "80";
    if (netloc_len == 0 || netloc_len >= (int)sizeof netloc)
        die("bad URL: %s", opt.url);
    snprintf(netloc, sizeof netloc, "%.*s", netloc_len, rest);
    char *colon = strrchr(netloc, ':'), *bracket = strchr(netloc, ']');
    if (colon && (!bracket || colon > bracket)) {
        snprintf(port, sizeof port, "%s", colon + 1);
        snprintf(host, sizeof host, "%.*s", (int)(colon - netloc), netloc);
    } else {
        snprintf(host, sizeof host, "%s", netloc);
    }
    if (host[0] == '[') { /* [::1] */
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    int error = getaddrinfo(host, port, &hints, &addr);
    if (error)
        die("%s: %s", host, gai_strerror(error));

    size_t size = strlen(path) + strlen(netloc) + 64;
    for (int i = 0; i < opt.n_headers; i++)
        size += strlen(opt.headers[i]) + 2;
    request = malloc(size);
    if (!request)
        die("out of memory");
    int len = snprintf(request, size, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, netloc);
    for (int i = 0; i < opt.n_headers; i++)
        len += snprintf(request + len, size - (size_t)len, "%s\r\n", opt.headers[i]);
    len += snprintf(request + len, size - (size_t)len, "\r\n");
    request_len = (size_t)len;
}

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20 || ch > 0x7e) /* a server's bytes need not be UTF-8 */
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static int wait_events(struct epoll_event *events, int max, double seconds)
{
    static int no_pwait2;
    if (seconds < 0)
        seconds = 0;
    if (!no_pwait2) {
        struct timespec ts = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
        int n = epoll_pwait2(epfd, events, max, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        no_pwait2 = 1; /* before Linux 5.11: milliseconds, rounded up */
    }
    return epoll_wait(epfd, events, max, (int)ceiling(seconds * 1000));
}

int main(int argc, char **argv)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    clock0 = ts.tv_sec + ts.tv_nsec / 1e9;
    parse_args(argc, argv);
    prepare();
    signal(SIGPIPE, SIG_IGN);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc((size_t)opt.connections, sizeof *conns);
    free_ring = calloc((size_t)opt.connections, sizeof *free_ring);
    struct epoll_event *events = calloc((size_t)opt.connections, sizeof *events);
    if (epfd < 0 || !conns || !free_ring || !events)
        die("setup failed");

    double cpu_before = cpu_seconds(), began = now();
    double start = began + 0.1;
    measured_from = start + opt.warmup;
    if (opt.timeline && !(timeline = fopen(opt.timeline, "w")))
        die("%s: %s", opt.timeline, strerror(errno));
    double stop = measured_from + opt.seconds, give_up = stop + opt.timeout;
    long long total = (long long)((opt.warmup + opt.seconds) * opt.rate);
    long long first_measured = ceiling(opt.warmup * opt.rate), next = 0;
    for (int i = 0; i < opt.connections; i++) {
        conns[i].fd = -1;
        slot_free(&conns[i], start);
    }

    double t = now();
    for (;;) {
        /* Every request now due, on the connections free, the longest free first. */
        while (next < total && free_count > 0) {
            double due = start + (double)next / opt.rate;
            if (due > t)
                break;
            struct conn *c = &conns[free_ring[free_head]];
            free_head = (free_head + 1) % opt.connections, free_count--;
            c->due = due;
            c->sent = now();
            c->measured = next >= first_measured;
            if (c->measured)
                push(&lags, &n_lags, &cap_lags, c->sent - (due > c->free_at ? due : c->free_at));
            next++;
            begin(c);
        }
        double wake = give_up;
        for (int i = 0; i < opt.connections; i++) {
            struct conn *c = &conns[i];
            if (c->state == IDLE)
                continue;
            if (t - c->sent >= opt.timeout) {
                timeouts += c->measured;
                fail(c, "timeout", "no response in time");
            } else if (c->sent + opt.timeout < wake) {
                wake = c->sent + opt.timeout;
            }
        }
        if (next < total && free_count > 0 && start + (double)next / opt.rate < wake)
            wake = start + (double)next / opt.rate;
        if ((next == total && free_count == opt.connections) || t >= give_up)
            break;
        int n = wait_events(events, opt.connections, wake - now());
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++)
            on_event(events[i].data.ptr);
        t = now();
    }
    double ended = t, cpu = cpu_seconds() - cpu_before;
    if (timeline)
        fclose(timeline);

    /* Whatever was measured and got no response is an error: lost, timed out, or never sent. */
    long long errors = (total - first_measured) - (long long)n_latencies;
    if (errors > 0 && next < total)
        note("%lld requests not sent by the end", total - next);
    qsort(latencies, n_latencies, sizeof *latencies, by_value);
    qsort(lags, n_lags, sizeof *lags, by_value);
    double span = (ended > stop ? ended : stop) - measured_from;
    printf("OPEN_LOOP {\"rate\": %.10g, \"achieved\": %.3f, \"requests\": %zu, "
           "\"connections\": %d, ",
           opt.rate, (double)n_latencies / span, n_latencies, opt.connections);
    printf("\"p50_ms\": %.4f, \"p90_ms\": %.4f, \"p99_ms\": %.4f, \"max_ms\": %.4f, ",
           1000 * percentile(latencies, n_latencies, 50),
           1000 * percentile(latencies, n_latencies, 90),
           1000 * percentile(latencies, n_latencies, 99),
           n_latencies ? 1000 * latencies[n_latencies - 1] : 0.0);
    printf("\"lag_p50_ms\": %.4f, \"lag_p99_ms\": %.4f, \"late_end_s\": %.4f, ",
           percentile(lags, n_lags, 50) * 1000, percentile(lags, n_lags, 99) * 1000,
           ended > stop ? ended - stop : 0.0);
    printf("\"cpu_percent\": %.2f, \"errors\": %lld, \"timeouts\": %lld, \"non2xx\": %lld, "
           "\"sample\": ",
           100 * cpu / (ended - began), errors > 0 ? errors : 0, timeouts, non2xx);
    print_json_string(sample);
    printf(", \"wall_s\": %.3f}\n", now());
    return 0;
}
