/* libFuzzer target for the in-tunnel HTTP/1 relay (netns/proxy/px_tunnel*.c) over socketpairs:
 * a plaintext tunnel to a REST endpoint, the client's bytes and the upstream's bytes both from
 * the input, the loop run until the tunnel ends or nothing moves.
 *
 * Input: u16 (little-endian) length of the client part, the client part, then the upstream part.
 * Invariants: no memory error; whatever the upstream receives starts with a request line the
 * policy allows ("GET /ok" or "HEAD /ok": a GET rule allows HEAD), since the policy allows
 * nothing else under enforce.
 */
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netns/proxy/px_snap.h"
#include "netns/proxy/px_tunnel.h"
#include "supervisor/loop.h"
#include "supervisor/policy/policy.h"
#include "tests/fuzz/fuzz.h"

static const char POLICY[] = "[network.api]\nbinary = /usr/bin/curl\n\n[network.api.endpoint.e]\n"
			     "host = api.example.com\nport = 443\nprotocol = rest\n"
			     "enforcement = enforce\nrule.1.method = GET\nrule.1.path = /ok/**\n";

static struct sv_loop loop;
static struct px_snap *snap;
static struct px_tun *tun;
static int result;

static void on_event(struct sv_loop *l, struct sv_watch *w, uint32_t events)
{
	(void)l;
	if (tun && result == PX_TUN_CONTINUE)
		result = px_tun_event(tun, w->data != NULL, events);
}

static void on_done(void *ctx, int r)
{
	(void)ctx;
	result = r;
}

static void init(void)
{
	struct sv_err err = {0};
	struct pol_policy pol;
	pol_init(&pol);
	if (sv_loop_init(&loop, &err) < 0 ||
	    pol_load_buffer("fuzz.ini", POLICY, strlen(POLICY), &pol, &err) < 0 ||
	    px_snap_new(&pol, &snap) < 0)
		abort();
	pol_free(&pol);
}

static void feed(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);
		if (k <= 0)
			break;
		p += k;
		n -= (size_t)k;
	}
	(void)shutdown(fd, SHUT_WR);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		init();
		ready = true;
	}
	if (size < 2 || size > 60000)
		return 0;
	size_t nc = (size_t)data[0] | (size_t)data[1] << 8;
	data += 2;
	size -= 2;
	if (nc > size)
		nc = size;
	int c[2], u[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, c) < 0)
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, u) < 0)
		abort();
	feed(c[1], data, nc);
	feed(u[1], data + nc, size - nc);
	struct sv_watch cw = {.fd = c[0], .fn = on_event, .data = &cw};
	struct sv_watch uw = {.fd = u[0], .fn = on_event, .data = NULL};
	if (sv_loop_add(&loop, &cw, 0) < 0 || sv_loop_add(&loop, &uw, 0) < 0)
		abort();
	const char *anc[1] = {"/bin/sh"};
	const struct px_tun_params tp = {.host = "api.example.com", .port = 443, .inspect = true,
					 .policy = snap, .exe = "/usr/bin/curl", .ancestors = anc,
					 .n_ancestors = 1};
	struct sv_err err = {0};
	result = PX_TUN_CONTINUE;
	if (px_tun_new(&loop, NULL, &cw, &uw, &tp, on_done, NULL, &tun, &err) < 0)
		abort();
	result = px_tun_start(tun);
	for (int i = 0; i < 64 && result == PX_TUN_CONTINUE; i++)
		(void)sv_loop_dispatch(&loop, 0);
	px_tun_free(tun);
	tun = NULL;
	sv_loop_del(&loop, &cw);
	sv_loop_del(&loop, &uw);
	(void)sv_loop_dispatch(&loop, 0); /* the deferred free */
	char got[8];
	ssize_t k = read(u[1], got, sizeof(got));
	if (k > 0)
		FUZZ_CHECK((k >= 7 && !memcmp(got, "GET /ok", 7)) ||
			   (k >= 8 && !memcmp(got, "HEAD /ok", 8)));
	close(c[0]);
	close(c[1]);
	close(u[0]);
	close(u[1]);
	return 0;
}
