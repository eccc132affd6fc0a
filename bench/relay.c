/* The floor for any user-space control proxy (bench/run.sh): accept a
 * redirected connection, ask conntrack where it was going, connect there,
 * then wait and copy. No FTP, no data connections, no limits, no timers.
 * One thread, one epoll, level-triggered; a short write ends the pair
 * (control lines are small, the send buffer is always empty enough), and
 * so does a failed one: sent with MSG_NOSIGNAL, since a write to a peer
 * that is gone would otherwise kill the relay with SIGPIPE (it did, exit
 * status 141, in the cost curve: hundreds of sessions end at once there).
 *
 * relay LISTEN_IPV4 PORT        cc -O2 -o relay relay.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXFD 65536
static int peer[MAXFD]; /* fd -> the other end of its pair, or -1 */

static void drop(int fd)
{
	int p = peer[fd];
	peer[fd] = peer[p] = -1; /* later events of this batch for them */
	close(fd); /* closing removes them from the epoll set */
	close(p);
}

static void add(int ep, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static void start(int ep, int lfd)
{
	struct sockaddr_in dst;
	socklen_t len = sizeof dst;
	int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (c < 0)
		return;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c >= MAXFD || s < 0 || s >= MAXFD ||
	    getsockopt(c, SOL_IP, SO_ORIGINAL_DST, &dst, &len) < 0 ||
	    (connect(s, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS)) {
		close(c);
		if (s >= 0)
			close(s);
		return;
	}
	int one = 1;
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	peer[c] = s;
	peer[s] = c;
	add(ep, c);
	add(ep, s); /* readable once the server greets: no wait for connect */
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: relay LISTEN_IPV4 PORT\n");
		return 2;
	}
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	inet_pton(AF_INET, argv[1], &a.sin_addr);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* inherited */
	if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 128) < 0) {
		perror("relay");
		return 1;
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	add(ep, lfd);
	struct epoll_event evs[64];
	char buf[4096];
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				start(ep, lfd);
				continue;
			}
			if (peer[fd] < 0)
				continue;
			ssize_t r = read(fd, buf, sizeof buf);
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r <= 0 || send(peer[fd], buf, r, MSG_NOSIGNAL) != r)
				drop(fd);
		}
	}
}
