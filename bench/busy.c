/* Busy FTP sessions for the cost curve (bench/curve.sh): SESSIONS sessions
 * list a directory again and again, each PASV+LIST or PORT+LIST, for SECS
 * seconds, while one more session (the probe) sends NOOP every 10 ms and
 * times the reply. One thread, one epoll, so the client costs little next
 * to what it measures. Every listing must end in 226 with data in it.
 *
 * busy HOST PORT SESSIONS SECS pasv|port LOCAL_ADDR     cc -O2 -o busy busy.c
 *
 * Prints one JSON object: ops (listings finished in the timed part),
 * secs, all_ops (with those finished while others still logged in),
 * errors (a session that got an unexpected reply or lost a
 * connection starts again), probes, probe_p50_us, probe_p99_us.
 * Counting starts once every session has logged in.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXS 1024
#define LINE 1024
#define PROBE_GAP_US 10000
#define MAXPROBES 100000
/* A session that hears nothing for this long starts again (an error). */
#define STUCK_US 10e6

enum step { GREET, USER, PASS, NEG, LIST, NOOP_WAIT, NOOP_IDLE };
enum kind { CTL = 0, DATA = 1, LISTEN = 2 };

struct session {
	int ctl, data, lsn;
	enum step step;
	char buf[LINE];
	int len;
	int got_1xx, got_226, data_eof, data_bytes;
	int logged_in;
	double sent; /* probe: when NOOP went out */
	double since; /* when it last sent or was started */
};

static struct session ss[MAXS + 1];

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}
static int ep, nsess, active;
static struct sockaddr_in server, local;
static long ops, all_ops, errors;
static char first_error[128]; /* what the first error was, for the report */

static void error_seen(int i, const char *what)
{
	fprintf(stderr, "busy: session %d: %s\n", i, what);
	if (!first_error[0])
		for (size_t k = 0; what[k] && k < sizeof first_error - 1; k++)
			first_error[k] = what[k] == '"' || what[k] == '\\' || what[k] < ' ' ? '\'' : what[k];
}
static int counting, logged;
static double probes[MAXPROBES];
static int nprobes;
static double next_probe;
/* Sessions connect a few at a time: a burst of hundreds of SYNs would
 * overflow the server's accept queue, and the dropped ones wait out
 * SYN-ACK retransmissions (seconds). */
#define CONNECTING_MAX 16
static int next_start;

static void start(int i);

static void start_more(void)
{
	if (next_start <= nsess)
		start(next_start++);
}


static void watch(int fd, int i, enum kind k, unsigned ev)
{
	struct epoll_event e = {.events = ev, .data.u64 = ((unsigned long)i << 2) | k};
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

static void closefd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void send_line(struct session *s, const char *l)
{
	size_t n = strlen(l);
	/* A short line into an empty send buffer: a failure shows as a
	 * missing reply (the session then starts again). */
	ssize_t w = write(s->ctl, l, n);
	(void)w;
	s->since = now_us();
}

static void start(int i)
{
	struct session *s = &ss[i];
	s->len = 0;
	s->data = s->lsn = -1;
	s->step = GREET;
	s->logged_in = 0;
	s->since = now_us();
	s->ctl = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	connect(s->ctl, (struct sockaddr *)&server, sizeof server);
	watch(s->ctl, i, CTL, EPOLLIN);
}

static void restart(int i)
{
	struct session *s = &ss[i];
	errors++;
	closefd(&s->ctl);
	closefd(&s->data);
	closefd(&s->lsn);
	if (s->logged_in)
		logged--;
	start(i);
}

/* The next negotiation of a busy session. */
static void negotiate(int i)
{
	struct session *s = &ss[i];
	char l[64];
	s->got_1xx = s->got_226 = s->data_eof = s->data_bytes = 0;
	s->step = NEG;
	if (!active) {
		send_line(s, "PASV\r\n");
		return;
	}
	struct sockaddr_in a = local;
	socklen_t al = sizeof a;
	a.sin_port = 0;
	s->lsn = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (bind(s->lsn, (struct sockaddr *)&a, sizeof a) || listen(s->lsn, 1) ||
	    getsockname(s->lsn, (struct sockaddr *)&a, &al)) {
		error_seen(i, "no port to listen on");
		restart(i);
		return;
	}
	watch(s->lsn, i, LISTEN, EPOLLIN);
	unsigned char *h = (unsigned char *)&a.sin_addr.s_addr;
	unsigned p = ntohs(a.sin_port);
	snprintf(l, sizeof l, "PORT %u,%u,%u,%u,%u,%u\r\n", h[0], h[1], h[2], h[3], p >> 8, p & 255);
	send_line(s, l);
}

static void listing_done(int i)
{
	struct session *s = &ss[i];
	if (!(s->got_226 && s->data_eof))
		return;
	if (s->data_bytes == 0) {
		error_seen(i, "empty listing");
		restart(i);
		return;
	}
	all_ops++;
	if (counting)
		ops++;
	negotiate(i);
}

static int pasv_port(const char *l, struct sockaddr_in *a)
{
	unsigned h1, h2, h3, h4, p1, p2;
	const char *p = strchr(l, '(');
	if (!p || sscanf(p, "(%u,%u,%u,%u,%u,%u)", &h1, &h2, &h3, &h4, &p1, &p2) != 6)
		return -1;
	memset(a, 0, sizeof *a);
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(h1 << 24 | h2 << 16 | h3 << 8 | h4);
	a->sin_port = htons(p1 << 8 | p2);
	return 0;
}

/* One final reply line (multi-line replies are skipped to their end). */
static void reply(int i, const char *l)
{
	struct session *s = &ss[i];
	int code = atoi(l);
	int probe = i == nsess;
	s->since = now_us();
	switch (s->step) {
	case GREET:
		if (code != 220)
			goto bad;
		start_more();
		send_line(s, "USER anonymous\r\n");
		s->step = USER;
		return;
	case USER:
		if (code == 230)
			goto in;
		if (code != 331)
			goto bad;
		send_line(s, "PASS load@example.org\r\n");
		s->step = PASS;
		return;
	case PASS:
		if (code != 230)
			goto bad;
in:
		s->logged_in = 1;
		logged++;
		if (probe) {
			s->step = NOOP_IDLE;
			next_probe = now_us();
		} else {
			negotiate(i);
		}
		return;
	case NEG:
		if (active) {
			if (code != 200)
				goto bad;
		} else {
			struct sockaddr_in a;
			if (code != 227 || pasv_port(l, &a))
				goto bad;
			s->data = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
			connect(s->data, (struct sockaddr *)&a, sizeof a);
			watch(s->data, i, DATA, EPOLLIN);
		}
		send_line(s, "LIST\r\n");
		s->step = LIST;
		return;
	case LIST:
		if (code == 150 || code == 125) {
			s->got_1xx = 1;
			return;
		}
		if (code != 226 || !s->got_1xx)
			goto bad;
		s->got_226 = 1;
		listing_done(i);
		return;
	case NOOP_WAIT:
		if (code != 200)
			goto bad;
		if (counting && nprobes < MAXPROBES)
			probes[nprobes++] = now_us() - s->sent;
		s->step = NOOP_IDLE;
		next_probe = now_us() + PROBE_GAP_US;
		return;
	case NOOP_IDLE:
		goto bad;
	}
bad:;
	char what[LINE + 32];
	snprintf(what, sizeof what, "unexpected reply: %s", l);
	error_seen(i, what);
	restart(i);
}

static void on_ctl(int i)
{
	struct session *s = &ss[i];
	for (;;) {
		ssize_t n = read(s->ctl, s->buf + s->len, LINE - 1 - s->len);
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			error_seen(i, n == 0 ? "control connection closed" : "control connection failed");
			restart(i);
			return;
		}
		if (n < 0)
			return;
		s->len += n;
		char *nl;
		while (s->ctl >= 0 && (nl = memchr(s->buf, '\n', s->len))) {
			*nl = 0;
			char line[LINE];
			int ll = nl - s->buf + 1;
			memcpy(line, s->buf, ll);
			memmove(s->buf, nl + 1, s->len - ll);
			s->len -= ll;
			if (ll >= 5 && line[3] == ' ')
				reply(i, line);
		}
		if (s->len >= LINE - 1) {
			restart(i);
			return;
		}
	}
}

static void on_data(int i)
{
	struct session *s = &ss[i];
	char b[65536];
	for (;;) {
		ssize_t n = read(s->data, b, sizeof b);
		if (n > 0) {
			s->data_bytes += n;
			s->since = now_us();
			continue;
		}
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			error_seen(i, "data connection failed");
			restart(i);
			return;
		}
		/* Closed at once, as ftplib does: vsftpd sends 226 only after
		 * the client's end of the data connection is closed. */
		closefd(&s->data);
		s->data_eof = 1;
		listing_done(i);
		return;
	}
}

static void on_listen(int i)
{
	struct session *s = &ss[i];
	int fd = accept4(s->lsn, NULL, NULL, SOCK_NONBLOCK);
	if (fd < 0)
		return;
	closefd(&s->lsn);
	s->data = fd;
	watch(fd, i, DATA, EPOLLIN);
	on_data(i);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	if (argc != 7 || atoi(argv[3]) < 1 || atoi(argv[3]) > MAXS) {
		fprintf(stderr, "usage: busy HOST PORT SESSIONS(1-%d) SECS pasv|port LOCAL_ADDR\n", MAXS);
		return 2;
	}
	nsess = atoi(argv[3]);
	double secs = atof(argv[4]);
	active = strcmp(argv[5], "port") == 0;
	server.sin_family = local.sin_family = AF_INET;
	server.sin_port = htons(atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &server.sin_addr) != 1 ||
	    inet_pton(AF_INET, argv[6], &local.sin_addr) != 1) {
		fprintf(stderr, "busy: bad address\n");
		return 2;
	}
	ep = epoll_create1(0);
	while (next_start <= nsess && next_start < CONNECTING_MAX)
		start_more();
	double t0 = 0, deadline = now_us() + 60e6; /* logins get 60 s at most */
	struct epoll_event ev[256];
	for (;;) {
		double t = now_us();
		if (!counting && logged == nsess + 1) {
			counting = 1;
			t0 = t;
			deadline = t + secs * 1e6;
		}
		if (t >= deadline)
			break;
		static double next_check;
		if (t >= next_check) {
			next_check = t + 100e3;
			for (int i = 0; i < next_start; i++)
				if (ss[i].step != NOOP_IDLE && t - ss[i].since > STUCK_US) {
					error_seen(i, "nothing heard for 10 s");
					restart(i);
				}
		}
		struct session *p = &ss[nsess];
		if (p->step == NOOP_IDLE && t >= next_probe) {
			p->sent = t;
			p->step = NOOP_WAIT;
			send_line(p, "NOOP\r\n");
		}
		double until = deadline;
		if (p->step == NOOP_IDLE && next_probe < until)
			until = next_probe;
		if (until > t + 100e3)
			until = t + 100e3;
		int ms = (int)((until - t) / 1000) + 1;
		int n = epoll_wait(ep, ev, 256, ms);
		for (int k = 0; k < n; k++) {
			int i = ev[k].data.u64 >> 2, kind = ev[k].data.u64 & 3;
			struct session *s = &ss[i];
			/* An earlier event of this batch may have restarted it. */
			if (kind == CTL && s->ctl >= 0)
				on_ctl(i);
			else if (kind == DATA && s->data >= 0)
				on_data(i);
			else if (kind == LISTEN && s->lsn >= 0)
				on_listen(i);
		}
	}
	if (!counting) {
		int at[NOOP_IDLE + 1] = {0};
		for (int i = 0; i <= nsess; i++)
			at[ss[i].step]++;
		fprintf(stderr, "busy: only %d of %d sessions logged in (%d started; waiting: %d for 220, "
			"%d for USER's reply, %d for PASS's; %ld errors)\n",
			logged, nsess + 1, next_start, at[GREET], at[USER], at[PASS], errors);
		return 1;
	}
	double dt = (now_us() - t0) / 1e6;
	qsort(probes, nprobes, sizeof probes[0], cmp);
	double p50 = nprobes ? probes[nprobes / 2] : -1;
	double p99 = nprobes ? probes[(int)(nprobes * 0.99)] : -1;
	printf("{\"ops\": %ld, \"secs\": %.3f, \"all_ops\": %ld, \"errors\": %ld, "
	       "\"first_error\": \"%s\", \"probes\": %d, \"probe_p50_us\": %.1f, "
	       "\"probe_p99_us\": %.1f}\n",
	       ops, dt, all_ops, errors, first_error, nprobes, p50, p99);
	return 0;
}
