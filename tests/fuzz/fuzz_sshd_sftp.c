/* libFuzzer target for the SSH server's own SFTP v3 packet handler (session/sshd_sftp.c).
 *
 * The input is a stream of length-prefixed packets, as a client sends them. The handler runs in
 * dry mode: opens land on /dev/null or /, nothing is created, changed or removed, so the fuzzer
 * can never touch the host's files. Every reply must be a well-formed frame of the size it
 * claims, with a known reply type.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/ssh/sshd_sftp.h"
#include "tests/fuzz/fuzz.h"

static struct sshd_sftp g_s;

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sshd_sftp_init(&g_s, true);
	size_t off = 0;
	while (size - off >= 4) {
		uint32_t len = be32(data + off);
		off += 4;
		if (len > size - off)
			len = (uint32_t)(size - off);
		/* A copy of exactly the packet, so reading past it is caught. */
		uint8_t *pkt = malloc(len ? len : 1);
		FUZZ_CHECK(pkt != NULL);
		memcpy(pkt, data + off, len);
		sshd_sftp_packet(&g_s, pkt, len);
		free(pkt);
		off += len;
		if (!g_s.ready)
			continue;
		FUZZ_CHECK(g_s.olen >= 9 && g_s.olen <= sizeof(g_s.out));
		FUZZ_CHECK(be32(g_s.out) == g_s.olen - 4);
		uint8_t t = g_s.out[4];
		FUZZ_CHECK(t == 2 || (t >= 101 && t <= 105));
	}
	sshd_sftp_close_all(&g_s);
	return 0;
}
