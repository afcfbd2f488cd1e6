/* A busy neighbour: THREADS threads (default: every core) spinning at full speed, like a
 * parallel compile. The lab names it cc1 so the agent's view of a busy host is tested against
 * a process that burns CPU and is no miner.
 *
 * Build: cc -O2 -pthread -o cc1 busy.c
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static void *spin(void *arg) {
    volatile unsigned long x = (unsigned long)arg;
    for (;;) x = x * 6364136223846793005ul + 1442695040888963407ul;
    return NULL;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : sysconf(_SC_NPROCESSORS_ONLN);
    for (long i = 1; i < n; i++) {
        pthread_t t;
        pthread_create(&t, NULL, spin, (void *)i);
    }
    spin(NULL);
    return 0;
}
