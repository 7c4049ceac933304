/* A small thread pool posting completions back to the event loop through an eventfd.
 *
 * Two intrusive FIFO queues under one mutex: pending (submit → workers) and finished
 * (workers → loop). The loop thread alone calls done(); workers alone call run(). Never block
 * the loop on the mutex for longer than a queue splice.
 */
#include "worker.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

struct queue {
	struct sv_job *head, *tail;
};

struct sv_workers {
	struct sv_loop *loop;
	struct sv_watch evw; /* eventfd: "finished jobs are waiting" */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct queue pending, finished;
	unsigned max_threads, nthreads, idle, inflight;
	bool stopping;
	pthread_t threads[SV_WORKERS_MAX];
};

static void q_push(struct queue *q, struct sv_job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

static struct sv_job *q_pop(struct queue *q)
{
	struct sv_job *j = q->head;
	if (j) {
		q->head = j->next;
		if (!q->head)
			q->tail = NULL;
		j->next = NULL;
	}
	return j;
}

static void *worker_main(void *arg)
{
	struct sv_workers *w = arg;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct sv_job *j = q_pop(&w->pending);
		if (!j) {
			if (w->stopping)
				break;
			w->idle++;
			pthread_cond_wait(&w->wake, &w->lock);
			w->idle--;
			continue;
		}
		pthread_mutex_unlock(&w->lock);
		j->run(j);
		pthread_mutex_lock(&w->lock);
		q_push(&w->finished, j);
		uint64_t one = 1;
		/* An eventfd counter write cannot block unless it would overflow: it cannot. */
		(void)!write(w->evw.fd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Loop thread: run done() for every finished job, outside the lock. */
static void deliver(struct sv_workers *w)
{
	uint64_t n;
	(void)!read(w->evw.fd, &n, sizeof(n));
	pthread_mutex_lock(&w->lock);
	struct queue done = w->finished;
	w->finished.head = w->finished.tail = NULL;
	pthread_mutex_unlock(&w->lock);
	for (struct sv_job *j = q_pop(&done); j; j = q_pop(&done)) {
		pthread_mutex_lock(&w->lock);
		w->inflight--;
		pthread_mutex_unlock(&w->lock);
		j->done(w->loop, j);
	}
}

static void on_event(struct sv_loop *loop, struct sv_watch *watch, uint32_t events)
{
	(void)loop;
	(void)events;
	deliver(watch->data);
}

int sv_workers_new(struct sv_loop *loop, unsigned nthreads, struct sv_workers **out,
		   struct sv_err *err)
{
	if (nthreads == 0 || nthreads > SV_WORKERS_MAX)
		return sv_err_set(err, EINVAL, "workers: %u threads is out of range", nthreads);
	struct sv_workers *w = calloc(1, sizeof(*w));
	if (!w)
		return sv_err_set(err, ENOMEM, "workers: out of memory");
	w->loop = loop;
	w->max_threads = nthreads;
	w->evw.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->evw.fd < 0) {
		int e = errno;
		free(w);
		return sv_err_set(err, e, "workers: eventfd: %s", strerror(e));
	}
	w->evw.fn = on_event;
	w->evw.data = w;
	int r = sv_loop_add(loop, &w->evw, EPOLLIN);
	if (r < 0) {
		close(w->evw.fd);
		free(w);
		return sv_err_set(err, r, "workers: epoll: %s", strerror(-r));
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	*out = w;
	return 0;
}

/* Called with the lock held: start one more thread when every running one is busy. */
static int maybe_grow(struct sv_workers *w)
{
	if (w->idle > 0 || w->nthreads >= w->max_threads)
		return 0;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, SV_WORKER_STACK);
	int r = pthread_create(&w->threads[w->nthreads], &attr, worker_main, w);
	pthread_attr_destroy(&attr);
	if (r != 0)
		return w->nthreads > 0 ? 0 : -r; /* the running threads will get to it */
	w->nthreads++;
	return 0;
}

int sv_workers_submit(struct sv_workers *w, struct sv_job *job)
{
	pthread_mutex_lock(&w->lock);
	int r = maybe_grow(w);
	if (r == 0) {
		q_push(&w->pending, job);
		w->inflight++;
		pthread_cond_signal(&w->wake);
	}
	pthread_mutex_unlock(&w->lock);
	return r < 0 ? -EAGAIN : 0;
}

unsigned sv_workers_pending(const struct sv_workers *w)
{
	pthread_mutex_t *lock = (pthread_mutex_t *)&w->lock;
	pthread_mutex_lock(lock);
	unsigned n = w->inflight;
	pthread_mutex_unlock(lock);
	return n;
}

void sv_workers_park(struct sv_workers *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	/* Every queued job has run; their completions wait behind the eventfd as usual. */
	pthread_mutex_lock(&w->lock);
	w->stopping = false;
	w->nthreads = w->idle = 0;
	pthread_mutex_unlock(&w->lock);
}

void sv_workers_free(struct sv_workers *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	deliver(w);
	sv_loop_del(w->loop, &w->evw);
	close(w->evw.fd);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
