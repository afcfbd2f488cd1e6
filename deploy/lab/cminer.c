/* A disguised CPU miner simulator, behaving as cryptojacking campaigns run XMRig: it reads
 * its pool from config.json in its working directory (never from argv), lowers its own
 * priority to nice 19, keeps a RandomX light-mode-sized scratchpad (256 MiB by default) in
 * transparent huge pages, runs one hashing thread per allowed core (cpu-max-threads-hint),
 * and speaks CryptoNote Stratum (login, job, submit) to the pool. The lab renames it
 * (kworker) and packs it with UPX. It mines nothing: the "hash" is a memory-hard busy loop.
 *
 * config.json keys read (flat, XMRig-like): "url": "IP:PORT", "user", "threads-hint" (%),
 * "scratch-mb", "share-interval" (s), "nice".
 *
 * Build: cc -O2 -pthread -o kworker cminer.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char AGENT[] = "XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0";

static char cfg_url[256] = "";
static char cfg_user[256] = "x";
static long cfg_hint = 100, cfg_scratch_mb = 256, cfg_share = 5, cfg_nice = 19;
static volatile uint64_t *scratch;
static size_t scratch_words;
static volatile int have_job;
static volatile uint64_t hashes;

static const char *find_key(const char *text, const char *key) {
    char needle[64];
    snprintf(needle, sizeof needle, "\"%s\"", key);
    const char *p = strstr(text, needle);
    if (!p) return NULL;
    p = strchr(p + strlen(needle), ':');
    if (!p) return NULL;
    p++;
    while (*p == ' ' || *p == '\t') p++;
    return p;
}

static void str_key(const char *text, const char *key, char *out, size_t cap) {
    const char *p = find_key(text, key);
    if (!p || *p != '"') return;
    p++;
    size_t n = 0;
    while (*p && *p != '"' && n + 1 < cap) out[n++] = *p++;
    out[n] = 0;
}

static void num_key(const char *text, const char *key, long *out) {
    const char *p = find_key(text, key);
    if (p && (*p == '-' || (*p >= '0' && *p <= '9'))) *out = strtol(p, NULL, 10);
}

static int load_config(void) {
    FILE *f = fopen("config.json", "r");
    if (!f) {
        perror("config.json");
        return -1;
    }
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    str_key(text, "url", cfg_url, sizeof cfg_url);
    str_key(text, "user", cfg_user, sizeof cfg_user);
    num_key(text, "threads-hint", &cfg_hint);
    num_key(text, "scratch-mb", &cfg_scratch_mb);
    num_key(text, "share-interval", &cfg_share);
    num_key(text, "nice", &cfg_nice);
    return cfg_url[0] ? 0 : -1;
}

static void *hasher(void *arg) {
    uint64_t x = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    for (;;) {
        if (!have_job) {
            usleep(50000);
            continue;
        }
        for (int i = 0; i < 1 << 16; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t at = x % scratch_words;
            scratch[at] += x;
        }
        __atomic_add_fetch(&hashes, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static int send_line(int fd, const char *line) {
    size_t len = strlen(line), done = 0;
    while (done < len) {
        ssize_t n = send(fd, line + done, len - done, MSG_NOSIGNAL);
        if (n <= 0) return -1;
        done += (size_t)n;
    }
    return 0;
}

static void session(void) {
    char host[256];
    snprintf(host, sizeof host, "%s", cfg_url);
    char *scheme = strstr(host, "://");
    char *h = scheme ? scheme + 3 : host;
    char *colon = strrchr(h, ':');
    if (!colon) return;
    *colon = 0;
    int port = atoi(colon + 1);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, h, &sa.sin_addr) != 1) {
        fprintf(stderr, "miner: %s is not an IPv4 address\n", h);
        return;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "miner: connect: %s\n", strerror(errno));
        close(fd);
        return;
    }
    struct sockaddr_in me;
    socklen_t mel = sizeof me;
    getsockname(fd, (struct sockaddr *)&me, &mel);
    printf("connected pool=%s port=%d local_port=%d pid=%d\n", h, port, ntohs(me.sin_port),
           (int)getpid());
    fflush(stdout);
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char line[1024];
    int id = 1;
    snprintf(line, sizeof line,
             "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"login\",\"params\":{\"login\":\"%s\","
             "\"pass\":\"x\",\"agent\":\"%s\",\"algo\":[\"rx/0\"]}}\n",
             id++, cfg_user, AGENT);
    if (send_line(fd, line) != 0) goto out;
    char buf[8192];
    size_t have = 0;
    char job[128] = "";
    time_t last = time(NULL);
    for (;;) {
        ssize_t n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (n == 0) break;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) break;
        if (n > 0) {
            have += (size_t)n;
            buf[have] = 0;
            char *p = strstr(buf, "\"job_id\"");
            if (p) {
                p = strchr(p + 8, '"');
                if (p) {
                    size_t k = 0;
                    p++;
                    while (*p && *p != '"' && k + 1 < sizeof job) job[k++] = *p++;
                    job[k] = 0;
                    have_job = 1;
                }
            }
            char *nl = strrchr(buf, '\n');
            if (nl) {
                size_t rest = have - (size_t)(nl + 1 - buf);
                memmove(buf, nl + 1, rest);
                have = rest;
            } else if (have > sizeof buf / 2) {
                have = 0;
            }
        }
        if (job[0] && time(NULL) - last >= cfg_share) {
            last = time(NULL);
            snprintf(line, sizeof line,
                     "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"submit\",\"params\":{\"id\":\"1\","
                     "\"job_id\":\"%s\",\"nonce\":\"%08x\",\"result\":\"%016llx%016llx\"}}\n",
                     id++, job, (unsigned)rand(), (unsigned long long)hashes,
                     (unsigned long long)scratch[0]);
            if (send_line(fd, line) != 0) break;
        }
    }
out:
    have_job = 0;
    close(fd);
}

int main(void) {
    if (load_config() != 0) {
        fprintf(stderr, "miner: no pool url in config.json\n");
        return 2;
    }
    setpriority(PRIO_PROCESS, 0, (int)cfg_nice); /* threads created below inherit it */
    size_t bytes = (size_t)cfg_scratch_mb << 20;
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    madvise(mem, bytes, MADV_HUGEPAGE);
    memset(mem, 1, bytes);
    scratch = mem;
    scratch_words = bytes / sizeof(uint64_t);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long threads = cores * cfg_hint / 100;
    if (threads < 1) threads = 1;
    for (long i = 0; i < threads; i++) {
        pthread_t t;
        pthread_create(&t, NULL, hasher, (void *)(uintptr_t)(i + 1));
    }
    for (;;) {
        session();
        sleep(2);
    }
}
