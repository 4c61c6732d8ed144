/*
 * The bench's reference relay (`npm run bench -- --reference-relay MODE`): a minimal transparent
 * TCP relay in C, to bound what any relay in user space can do for one stream on the bench's lab.
 * It does what tproxy's splice engine does and nothing else: accept a TPROXY'd connection, connect
 * to its original destination from the client's address (IP_TRANSPARENT, SO_MARK), and move the
 * bytes with splice(2) through a 1 MiB pipe per direction, half-closes passed on.
 *
 *   reference-relay PORT MARK threads|epoll
 *
 * threads: two threads per connection, one per direction, blocking splice (no event loop at all:
 *          each direction sleeps in the kernel until its bytes come, on its own core).
 * epoll:   one thread, non-blocking splice driven by level-triggered epoll (tproxy's design).
 * Connects block (in the connection's thread, or in the loop for epoll): it is for streams.
 * IPv4 only; no timeouts, no caps: a bench tool, not a proxy.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define PIPE_SIZE (1 << 20)

static int mark;

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void make_pipe(int fds[2]) {
  if (pipe2(fds, O_CLOEXEC) < 0) die("pipe2");
  /* Best effort: fs/pipe-max-size may be lower. */
  (void)fcntl(fds[1], F_SETPIPE_SZ, PIPE_SIZE);
}

/* The upstream socket for an accepted one: from the client's address to the original destination. */
static int connect_upstream(int client) {
  struct sockaddr_in peer, orig;
  socklen_t len = sizeof peer;
  if (getpeername(client, (struct sockaddr *)&peer, &len) < 0) return -1;
  len = sizeof orig;
  if (getsockname(client, (struct sockaddr *)&orig, &len) < 0) return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark);
  setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  peer.sin_port = 0;
  if (bind(fd, (struct sockaddr *)&peer, sizeof peer) < 0 || connect(fd, (struct sockaddr *)&orig, sizeof orig) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* ---- threads: one blocking thread per direction ---- */

struct flow {
  int fd[2];
  int done; /* directions finished, under the atomic builtins */
};

struct direction {
  struct flow *flow;
  int from, to;
};

static void finish(struct flow *f) {
  if (__atomic_add_fetch(&f->done, 1, __ATOMIC_ACQ_REL) == 2) {
    close(f->fd[0]);
    close(f->fd[1]);
    free(f);
  }
}

static void *pump(void *arg) {
  struct direction d = *(struct direction *)arg;
  free(arg);
  int p[2];
  make_pipe(p);
  for (;;) {
    ssize_t n = splice(d.from, NULL, p[1], NULL, PIPE_SIZE, SPLICE_F_MOVE);
    if (n == 0) {
      shutdown(d.to, SHUT_WR);
      break;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      shutdown(d.from, SHUT_RDWR);
      shutdown(d.to, SHUT_RDWR);
      break;
    }
    while (n > 0) {
      ssize_t m = splice(p[0], NULL, d.to, NULL, (size_t)n, SPLICE_F_MOVE);
      if (m < 0 && errno == EINTR) continue;
      if (m <= 0) {
        shutdown(d.from, SHUT_RDWR);
        shutdown(d.to, SHUT_RDWR);
        n = -1;
        break;
      }
      n -= m;
    }
    if (n < 0) break;
  }
  close(p[0]);
  close(p[1]);
  finish(d.flow);
  return NULL;
}

static void start_pump(struct flow *f, int from, int to) {
  struct direction *d = malloc(sizeof *d);
  if (!d) die("malloc");
  *d = (struct direction){ f, from, to };
  pthread_t t;
  if (pthread_create(&t, NULL, pump, d) != 0) die("pthread_create");
  pthread_detach(t);
}

static void *connection(void *arg) {
  int client = (int)(long)arg;
  int upstream = connect_upstream(client);
  if (upstream < 0) {
    close(client);
    return NULL;
  }
  struct flow *f = calloc(1, sizeof *f);
  if (!f) die("calloc");
  f->fd[0] = client;
  f->fd[1] = upstream;
  start_pump(f, client, upstream);
  start_pump(f, upstream, client);
  return NULL;
}

static void run_threads(int listener) {
  for (;;) {
    int client = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (client < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      die("accept4");
    }
    pthread_t t;
    if (pthread_create(&t, NULL, connection, (void *)(long)client) != 0) die("pthread_create");
    pthread_detach(t);
  }
}

/* ---- epoll: one thread, non-blocking splice ---- */

struct half {
  int from, to;
  int pipe[2];
  size_t queued; /* bytes in the pipe */
  int eof;       /* the source ended and the pipe drained: write side shut */
};

struct conn {
  int fd[2];
  struct half half[2]; /* [0]: fd[0] -> fd[1], [1]: fd[1] -> fd[0] */
  int dead;
};

/* epoll's data: the connection, and which of its descriptors. */
static void *tag(struct conn *c, int side) { return (char *)c + side; }

static void watch(int ep, struct conn *c, int side) {
  /* Read when that side's outgoing half can take more; write when the incoming half has bytes queued. */
  struct half *out = &c->half[side], *in = &c->half[1 - side];
  struct epoll_event ev = { .events = (out->eof || out->queued > 0 ? 0 : EPOLLIN | EPOLLRDHUP) | (in->queued > 0 ? EPOLLOUT : 0), .data.ptr = tag(c, side) };
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd[side], &ev);
}

/* Move what can move on one half without blocking; -1 on an error of the connection. */
static int move(struct half *h) {
  for (;;) {
    if (h->queued > 0) {
      ssize_t m = splice(h->pipe[0], NULL, h->to, NULL, h->queued, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (m < 0) return errno == EAGAIN ? 0 : -1;
      h->queued -= (size_t)m;
      if (h->queued > 0) return 0;
    }
    if (h->eof) return 0;
    ssize_t n = splice(h->from, NULL, h->pipe[1], NULL, PIPE_SIZE, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n == 0) {
      h->eof = 1;
      shutdown(h->to, SHUT_WR);
      return 0;
    }
    if (n < 0) return errno == EAGAIN ? 0 : -1;
    h->queued = (size_t)n;
  }
}

static void close_conn(int ep, struct conn *c) {
  for (int i = 0; i < 2; i++) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd[i], NULL);
    close(c->fd[i]);
    close(c->half[i].pipe[0]);
    close(c->half[i].pipe[1]);
  }
  c->dead = 1;
}

static void run_epoll(int listener) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
  if (epoll_ctl(ep, EPOLL_CTL_ADD, listener, &lev) < 0) die("epoll_ctl");
  struct epoll_event events[64];
  struct conn *graveyard[64];
  for (;;) {
    int n = epoll_wait(ep, events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    int buried = 0;
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr == NULL) {
        int client = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (client < 0) continue;
        int upstream = connect_upstream(client);
        if (upstream < 0) {
          close(client);
          continue;
        }
        struct conn *c = calloc(1, sizeof *c);
        if (!c) die("calloc");
        c->fd[0] = client;
        c->fd[1] = upstream;
        for (int s = 0; s < 2; s++) {
          fcntl(c->fd[s], F_SETFL, O_NONBLOCK);
          make_pipe(c->half[s].pipe);
          c->half[s].from = c->fd[s];
          c->half[s].to = c->fd[1 - s];
          struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = tag(c, s) };
          epoll_ctl(ep, EPOLL_CTL_ADD, c->fd[s], &ev);
        }
        continue;
      }
      uintptr_t p = (uintptr_t)events[i].data.ptr;
      struct conn *c = (struct conn *)(p & ~(uintptr_t)1);
      if (c->dead) continue;
      if ((events[i].events & EPOLLERR) || move(&c->half[0]) < 0 || move(&c->half[1]) < 0) {
        close_conn(ep, c);
        graveyard[buried++] = c;
        continue;
      }
      if (c->half[0].eof && c->half[1].eof && c->half[0].queued == 0 && c->half[1].queued == 0) {
        close_conn(ep, c);
        graveyard[buried++] = c;
        continue;
      }
      watch(ep, c, 0);
      watch(ep, c, 1);
    }
    /* Freed after the batch: a later event of the same turn may name a closed connection. */
    for (int i = 0; i < buried; i++) free(graveyard[i]);
  }
}

int main(int argc, char **argv) {
  if (argc != 4 || (strcmp(argv[3], "threads") != 0 && strcmp(argv[3], "epoll") != 0)) {
    fprintf(stderr, "usage: %s PORT MARK threads|epoll\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  mark = atoi(argv[2]);
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) die("socket");
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (setsockopt(listener, SOL_IP, IP_TRANSPARENT, &one, sizeof one) < 0) die("IP_TRANSPARENT");
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1])), .sin_addr.s_addr = htonl(INADDR_ANY) };
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(listener, 1024) < 0) die("listen");
  fprintf(stderr, "reference-relay: listening on %s, %s\n", argv[1], argv[3]);
  if (strcmp(argv[3], "threads") == 0) run_threads(listener);
  else run_epoll(listener);
  return 0;
}
