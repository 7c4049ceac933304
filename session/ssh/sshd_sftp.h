/* The SFTP v3 packet handler behind sshd_sftp_serve, exposed for the fuzzer
 * (tests/fuzz/fuzz_sshd_sftp.c). Fixed-size state, no heap: it runs in a forked child.
 */
#ifndef SSHD_SFTP_H
#define SSHD_SFTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* OpenSSH's sftp-server accepts packets up to 256 KiB (SFTP_MAX_MSG_LENGTH); reads are answered
 * with at most SSHD_SFTP_DATA_MAX bytes (the client asks for 32 KiB). */
#define SSHD_SFTP_PACKET_MAX ((size_t)256 * 1024)
#define SSHD_SFTP_DATA_MAX ((size_t)64 * 1024)
#define SSHD_SFTP_HANDLES 64

struct sshd_sftp_handle {
	bool used;
	bool dir;
	bool append;
	int fd;
	size_t dpos, dlen;
	char dbuf[4096]; /* getdents64 batch of a directory handle */
};

struct sshd_sftp {
	bool dry;    /* fuzzing: opens hit /dev/null or /, nothing is created, changed or removed */
	bool inited;
	bool ready;  /* out holds a reply to send */
	bool ofull;
	size_t olen;
	uint8_t out[SSHD_SFTP_DATA_MAX + 1024];
	struct sshd_sftp_handle h[SSHD_SFTP_HANDLES];
};

void sshd_sftp_init(struct sshd_sftp *s, bool dry);
/* Handle one packet (type byte onward, without the length). On return s->ready says whether
 * s->out[0..olen) holds the reply. */
void sshd_sftp_packet(struct sshd_sftp *s, const uint8_t *pkt, size_t len);
void sshd_sftp_close_all(struct sshd_sftp *s);

#endif
