/* threads_tls.c: 8 pthreads each working on their own initialised and zero-initialised __thread variables. */
/*
 * Exercises the static TLS set-up (PT_TLS: .tdata image, .tbss, alignment),
 * thread creation and joining.  All threads are alive at once (barrier) so
 * their TLS blocks can be checked to be distinct; results are printed in
 * thread order after joining, so the output is deterministic.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define NTHREADS 8

__thread int tv = 42;                                             /* .tdata */
__thread long tb;                                                 /* .tbss  */
__thread char tstr[16] = "tls-init";                              /* .tdata */
__thread double taligned __attribute__((aligned(64))) = 1.5;      /* over-aligned .tdata */
__thread unsigned tbig[1024];                                     /* larger .tbss */

struct result {
    int id;
    int init_ok;
    long value;
    uintptr_t tv_addr; /* compared only, never printed */
};

static struct result results[NTHREADS];
static pthread_barrier_t barrier;

static int tls_initial_ok(void)
{
    int ok = tv == 42 && tb == 0 && strcmp(tstr, "tls-init") == 0 && taligned == 1.5 &&
             ((uintptr_t)&taligned % 64) == 0;
    for (int i = 0; i < 1024; i++)
        ok &= tbig[i] == 0;
    return ok;
}

static void *worker(void *arg)
{
    struct result *r = arg;
    r->init_ok = tls_initial_ok();
    r->tv_addr = (uintptr_t)&tv;

    /* Work on this thread's TLS only. */
    for (int i = 0; i < 100000; i++) {
        tv += r->id;
        tb += tv % 7;
        tbig[i % 1024] += (unsigned)i;
    }
    tstr[0] = (char)('A' + r->id);
    taligned *= r->id + 1;

    pthread_barrier_wait(&barrier); /* everyone alive at once */

    long v = tv + tb + (long)taligned + tstr[0];
    for (int i = 0; i < 1024; i++)
        v += tbig[i] & 0xff;
    r->value = v;
    return NULL;
}

int main(void)
{
    printf("main: initial TLS %s\n", tls_initial_ok() ? "ok" : "WRONG");
    tv = 7; /* must not leak into the threads */
    tb = 99;
    tstr[0] = 'M';

    pthread_t th[NTHREADS];
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++) {
        results[i].id = i;
        if (pthread_create(&th[i], NULL, worker, &results[i]) != 0) {
            printf("pthread_create %d failed\n", i);
            return 1;
        }
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);

    int all_ok = 1;
    long total = 0;
    for (int i = 0; i < NTHREADS; i++) {
        printf("thread %d: initial TLS %s, value %ld\n", i, results[i].init_ok ? "ok" : "WRONG",
               results[i].value);
        all_ok &= results[i].init_ok;
        total += results[i].value;
    }
    int distinct = 1;
    for (int i = 0; i < NTHREADS; i++)
        for (int j = i + 1; j < NTHREADS; j++)
            distinct &= results[i].tv_addr != results[j].tv_addr;
    for (int i = 0; i < NTHREADS; i++)
        distinct &= results[i].tv_addr != (uintptr_t)&tv;
    printf("TLS blocks distinct: %s\n", distinct ? "ok" : "NO");
    printf("main: TLS after threads %s\n", tv == 7 && tb == 99 && tstr[0] == 'M' ? "ok" : "WRONG");
    printf("total: %ld\n", total);
    return all_ok && distinct ? 0 : 1;
}
