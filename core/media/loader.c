/*
 * loader.c - one background thread that converts sound files too slow to
 * load on a worker's 20 ms tick (a long WAV at another rate, an MP3, a
 * music-on-hold stream the first time), then hands the command back.
 *
 * Workers send it a CMD_PLAY or CMD_MOH whose files are not in the caches; it
 * loads them into the shared caches (sound.c) and posts the command back to
 * the worker marked preloaded. It never touches sessions.
 */
#include "media/media_int.h"
#include "base/cw.h"
#include "log/log.h"

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>

static pthread_t th;
static cw_queue *q;
static bool running, quit;

static void load(struct mcmd *c)
{
    if (c->m.type == CMD_PLAY) {
        for (int i = 0; i < c->nfiles; i++) {
            char err[256];
            struct sound *s = sound_load(c->files[i], err, sizeof err);
            if (!s) log_warn("media", "loader: %s", err); /* the worker reports it */
            sound_unref(s);
        }
    } else if (c->m.type == CMD_MOH) {
        moh_unref(moh_get(c->str));
    }
}

static void *loader_main(void *arg)
{
    pthread_setname_np(pthread_self(), "media-loader");
    while (!__atomic_load_n(&quit, __ATOMIC_ACQUIRE)) {
        struct pollfd pfd = {.fd = cw_queue_fd(q), .events = POLLIN};
        if (poll(&pfd, 1, 1000) <= 0) continue;
        cw_msg *m = cw_queue_take_all(q);
        while (m) {
            cw_msg *next = m->next;
            struct mcmd *c = (struct mcmd *)m;
            if (c->m.type == 0 || __atomic_load_n(&quit, __ATOMIC_ACQUIRE)) {
                mcmd_free(c);
            } else {
                int64_t t0 = cw_mono_ms();
                load(c);
                log_debug("media", "loader: prepared in %lld ms", (long long)(cw_mono_ms() - t0));
                c->preloaded = true;
                engine_post(c->from_worker, c);
            }
            m = next;
        }
    }
    return NULL;
}

int loader_start(void)
{
    q = cw_queue_new();
    if (!q) return CW_EIO;
    quit = false;
    if (pthread_create(&th, NULL, loader_main, NULL)) {
        cw_queue_free(q);
        q = NULL;
        return CW_EIO;
    }
    running = true;
    return CW_OK;
}

void loader_post(struct mcmd *c)
{
    cw_queue_push(q, &c->m);
}

void loader_stop(void)
{
    if (!running) return;
    __atomic_store_n(&quit, true, __ATOMIC_RELEASE);
    cw_queue_push(q, &mcmd_new(0, 0)->m);
    pthread_join(th, NULL);
    cw_msg *m = cw_queue_take_all(q);
    while (m) {
        cw_msg *n = m->next;
        mcmd_free((struct mcmd *)m);
        m = n;
    }
    cw_queue_free(q);
    q = NULL;
    running = false;
}
