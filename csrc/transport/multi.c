/*
 * transport/multi.c — a libcurl multi handle over transports (see multi.h).
 *
 * Idle HTTP/1 connections are checked before libcurl may reuse them, as the
 * blocking transport does with the one its handle left (curl.c): a
 * connection idle in the multi's cache is readable only when it holds bytes
 * nobody asked for (a second, unasked answer) or the server's close, and
 * libcurl 7.88 would read those bytes as the next transfer's answer.
 *
 * The multi keeps a table of the connections its transfers use, named by
 * their local and peer ports (a descriptor number alone may be reused):
 * libcurl's PREREQFUNCTION says which connection a transfer is about to use
 * (one more user), the transfer's end gives it back (one fewer). A connection
 * whose last user ended is idle only if it is an HTTP/1 one that libcurl kept
 * (frames on an idle HTTP/2 connection are normal). Counting users, not
 * events, keeps this right when libcurl hands a connection to the next
 * transfer within the very perform that ended the previous one, before its
 * end is read here. Before libcurl picks connections for newly added
 * transfers, an idle connection that is readable is shut down: libcurl finds
 * it dead and connects again.
 */
#include "multi.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CONNS_MAX 4096 /* connections tracked at most (beyond: used unchecked, as libcurl would) */

/* A connection the multi's transfers use. */
typedef struct conn {
  int local, peer;  /* ports */
  int users;        /* transfers on it */
  int idle;         /* its last user ended and libcurl kept it (HTTP/1): watched */
  curl_socket_t fd; /* when idle */
} conn;

/* One transfer in the multi: libcurl's PRIVATE and PREREQDATA. */
typedef struct slot {
  hyp_multi *m;
  void *ud;        /* the caller's (hyp_multi_done returns it) */
  int local, peer; /* the connection it uses (-1: none yet) */
  struct slot *next_free;
} slot;

struct hyp_multi {
  CURLM *m;
  conn *conns;
  int nconns, cap;
  slot *free_slots; /* slots of ended transfers, for the next ones */
  int added;        /* a transfer was added since the last sweep */
};

/* The port of a socket address (-1 when it is not an IP one). */
static int port_of(const struct sockaddr_storage *a) {
  if (a->ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)a)->sin_port);
  if (a->ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
  return -1;
}

/* 1 when fd is the connected IP socket between these ports. */
static int is_conn(curl_socket_t fd, int local, int peer) {
  struct sockaddr_storage a;
  socklen_t n = sizeof a;
  if (getsockname(fd, (struct sockaddr *)&a, &n) != 0 || port_of(&a) != local) return 0;
  n = sizeof a;
  return getpeername(fd, (struct sockaddr *)&a, &n) == 0 && port_of(&a) == peer;
}

/* The index of the connection between these ports (-1: not tracked). */
static int find(const hyp_multi *m, int local, int peer) {
  for (int i = 0; i < m->nconns; i++)
    if (m->conns[i].local == local && m->conns[i].peer == peer) return i;
  return -1;
}

/* Stops tracking the connection at i. */
static void drop(hyp_multi *m, int i) { m->conns[i] = m->conns[--m->nconns]; }

static void released(hyp_multi *m, slot *s, CURL *e);

/* PREREQFUNCTION: the transfer of slot s is about to use the connection
 * between these ports. Never fails the transfer. */
static int taken(void *ud, char *peer_ip, char *local_ip, int peer_port, int local_port) {
  (void)peer_ip;
  (void)local_ip;
  slot *s = ud;
  hyp_multi *m = s->m;
  if (s->local >= 0) released(m, s, NULL); /* libcurl moved the transfer to another connection */
  s->local = local_port;
  s->peer = peer_port;
  int i = find(m, local_port, peer_port);
  if (i < 0) {
    if (m->nconns == m->cap) {
      int cap = m->cap ? m->cap * 2 : 16;
      conn *c = cap <= CONNS_MAX ? realloc(m->conns, (size_t)cap * sizeof *c) : NULL;
      if (!c) {
        s->local = s->peer = -1; /* untracked */
        return CURL_PREREQFUNC_OK;
      }
      m->conns = c;
      m->cap = cap;
    }
    i = m->nconns++;
    m->conns[i] = (conn){local_port, peer_port, 0, 0, CURL_SOCKET_BAD};
  }
  m->conns[i].users++;
  m->conns[i].idle = 0;
  return CURL_PREREQFUNC_OK;
}

/* The transfer e of slot s ends (or leaves its connection: e NULL): its
 * connection has one user fewer; with none left it is watched if libcurl
 * kept it as an HTTP/1 connection, and forgotten otherwise. (e must still be
 * in the multi: libcurl finds the kept connection in the multi's cache.) */
static void released(hyp_multi *m, slot *s, CURL *e) {
  int i = s->local >= 0 ? find(m, s->local, s->peer) : -1;
  s->local = s->peer = -1;
  if (i < 0) return;
  conn *c = &m->conns[i];
  if (--c->users > 0) return;
  int fd = e ? hyp_curl_kept_http1(e) : -1;
  if (fd >= 0 && is_conn(fd, c->local, c->peer)) {
    c->idle = 1;
    c->fd = fd;
  } else {
    drop(m, i); /* closed, HTTP/2, or not the connection libcurl kept */
  }
}

/* Before libcurl picks connections for new transfers: an idle connection
 * that is readable is shut down (libcurl finds it dead) and forgotten; a
 * readable descriptor that is no longer that connection is only forgotten. */
static void sweep(hyp_multi *m) {
  for (int i = 0; i < m->nconns; i++) {
    conn *c = &m->conns[i];
    if (!c->idle) continue;
    if (!hyp_curl_readable(c->fd)) continue; /* quiet: one system call per idle connection */
    /* still that connection? libcurl may have closed it, and the descriptor serve something else */
    if (is_conn(c->fd, c->local, c->peer)) shutdown(c->fd, SHUT_RDWR);
    drop(m, i--);
  }
}

/* See multi.h. */
hyp_multi *hyp_multi_new(void) {
  hyp_multi *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->m = curl_multi_init();
  if (!m->m) {
    free(m);
    return NULL;
  }
  return m;
}

/* See multi.h. */
void hyp_multi_free(hyp_multi *m) {
  if (!m) return;
  curl_multi_cleanup(m->m);
  while (m->free_slots) {
    slot *s = m->free_slots;
    m->free_slots = s->next_free;
    free(s);
  }
  free(m->conns);
  free(m);
}

/* See multi.h. */
int hyp_multi_add(hyp_multi *m, hyp_transport *t, void *ud) {
  CURL *e = hyp_transport_handle(t);
  slot *s = m->free_slots;
  if (s)
    m->free_slots = s->next_free;
  else if (!(s = malloc(sizeof *s)))
    return -1;
  *s = (slot){m, ud, -1, -1, NULL};
  curl_easy_setopt(e, CURLOPT_PRIVATE, s);
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, taken);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, s);
  if (curl_multi_add_handle(m->m, e) != CURLM_OK) {
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, NULL);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, NULL);
    curl_easy_setopt(e, CURLOPT_PRIVATE, NULL);
    s->next_free = m->free_slots;
    m->free_slots = s;
    return -1;
  }
  m->added = 1;
  return 0;
}

/* Takes e out of the multi (after its connection is accounted for) and
 * returns its slot's ud; the callback no longer points at the slot. */
static void *take_out(hyp_multi *m, CURL *e, int ended) {
  slot *s = NULL;
  curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
  if (s) released(m, s, ended ? e : NULL); /* an aborted transfer's connection is not kept */
  curl_multi_remove_handle(m->m, e);
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, NULL);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, NULL);
  curl_easy_setopt(e, CURLOPT_PRIVATE, NULL);
  if (!s) return NULL;
  void *ud = s->ud;
  s->next_free = m->free_slots;
  m->free_slots = s;
  return ud;
}

/* See multi.h. */
void hyp_multi_remove(hyp_multi *m, hyp_transport *t) { take_out(m, hyp_transport_handle(t), 0); }

/* See multi.h. */
void hyp_multi_perform(hyp_multi *m) {
  int running = 0;
  if (m->added) { /* the transfers added since take their connections in this perform */
    m->added = 0;
    sweep(m);
  }
  curl_multi_perform(m->m, &running);
}

/* See multi.h. */
void hyp_multi_poll(hyp_multi *m, int ms) { curl_multi_poll(m->m, NULL, 0, ms, NULL); }

/* See multi.h. */
void *hyp_multi_done(hyp_multi *m, int *code) {
  int queued;
  CURLMsg *msg;
  while ((msg = curl_multi_info_read(m->m, &queued))) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL *e = msg->easy_handle;
    *code = (int)msg->data.result;
    void *ud = take_out(m, e, 1);
    if (ud) return ud;
  }
  return NULL;
}
