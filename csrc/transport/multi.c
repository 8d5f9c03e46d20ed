/*
 * transport/multi.c — a libcurl multi handle over transports (see multi.h).
 *
 * Idle HTTP/1 connections are checked before libcurl may reuse them, as the
 * blocking transport does with the one its handle left (curl.c): a
 * connection idle in the multi's cache is readable only when it holds bytes
 * nobody asked for (a second, unasked answer) or the server's close, and
 * libcurl 7.88 would read those bytes as the next transfer's answer. The
 * multi notes the connection each HTTP/1 transfer leaves (its socket, local
 * and peer ports), forgets it when a transfer takes it again (libcurl's
 * PREREQFUNCTION names the connection a transfer is about to use) and, before
 * libcurl picks connections for newly added transfers, shuts down a noted one
 * that is readable: libcurl then finds it dead and connects again.
 */
#include "multi.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define IDLE_MAX 64 /* idle connections watched (the oldest is forgotten beyond) */

/* A connection a transfer left in the multi's cache. */
typedef struct idle_conn {
  curl_socket_t fd;
  int local, peer; /* ports: the connection, not just the descriptor (which may be reused) */
} idle_conn;

struct hyp_multi {
  CURLM *m;
  idle_conn idle[IDLE_MAX];
  int nidle;
  int added; /* a transfer was added since the last sweep */
};

/* The port of a socket address (-1 when it is not an IP one). */
static int port_of(const struct sockaddr_storage *a) {
  if (a->ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)a)->sin_port);
  if (a->ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
  return -1;
}

/* The local and peer ports of fd. 0 | -1 (not a connected IP socket). */
static int ports(curl_socket_t fd, int *local, int *peer) {
  struct sockaddr_storage a;
  socklen_t n = sizeof a;
  if (getsockname(fd, (struct sockaddr *)&a, &n) != 0) return -1;
  *local = port_of(&a);
  n = sizeof a;
  if (getpeername(fd, (struct sockaddr *)&a, &n) != 0) return -1;
  *peer = port_of(&a);
  return *local < 0 || *peer < 0 ? -1 : 0;
}

/* Forgets the idle connection at i. */
static void forget(hyp_multi *m, int i) {
  m->idle[i] = m->idle[--m->nidle];
}

/* Notes the connection the finished transfer e left, if it kept an HTTP/1
 * one (frames on an idle HTTP/2 connection are normal: libcurl reads them). */
static void note_idle(hyp_multi *m, CURL *e) {
  long version = 0;
  if (curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version) != CURLE_OK ||
      (version != CURL_HTTP_VERSION_1_0 && version != CURL_HTTP_VERSION_1_1))
    return;
  curl_socket_t fd = CURL_SOCKET_BAD;
  if (curl_easy_getinfo(e, CURLINFO_ACTIVESOCKET, &fd) != CURLE_OK || fd == CURL_SOCKET_BAD) return;
  idle_conn c = {fd, 0, 0};
  if (ports(fd, &c.local, &c.peer) != 0) return;
  for (int i = 0; i < m->nidle; i++)
    if (m->idle[i].fd == fd) forget(m, i--);
  if (m->nidle == IDLE_MAX) forget(m, 0);
  m->idle[m->nidle++] = c;
}

/* PREREQFUNCTION: a transfer is about to use the connection between these
 * ports: it is no longer idle. Never fails the transfer. */
static int taken(void *ud, char *peer_ip, char *local_ip, int peer_port, int local_port) {
  (void)peer_ip;
  (void)local_ip;
  hyp_multi *m = ud;
  for (int i = 0; i < m->nidle; i++)
    if (m->idle[i].local == local_port && m->idle[i].peer == peer_port) forget(m, i--);
  return CURL_PREREQFUNC_OK;
}

/* Before libcurl picks connections for new transfers: an idle connection
 * that is readable is shut down (libcurl finds it dead) and forgotten; a
 * readable descriptor that is no longer that connection is only forgotten. */
static void sweep(hyp_multi *m) {
  for (int i = 0; i < m->nidle; i++) {
    idle_conn *c = &m->idle[i];
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0) continue; /* quiet: nothing to do (one system call per connection) */
    int local, peer;
    /* still that connection? libcurl may have closed it, and the descriptor serve something else */
    if (ports(c->fd, &local, &peer) == 0 && local == c->local && peer == c->peer) shutdown(c->fd, SHUT_RDWR);
    forget(m, i--);
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
  free(m);
}

/* See multi.h. */
int hyp_multi_add(hyp_multi *m, hyp_transport *t, void *ud) {
  CURL *e = hyp_transport_handle(t);
  curl_easy_setopt(e, CURLOPT_PRIVATE, ud);
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, taken);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, m);
  if (curl_multi_add_handle(m->m, e) != CURLM_OK) {
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, NULL);
    return -1;
  }
  m->added = 1;
  return 0;
}

/* Takes e out of the multi; its callback no longer points at it. */
static void take_out(hyp_multi *m, CURL *e) {
  curl_multi_remove_handle(m->m, e);
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, NULL);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, NULL);
}

/* See multi.h. */
void hyp_multi_remove(hyp_multi *m, hyp_transport *t) { take_out(m, hyp_transport_handle(t)); }

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
    void *ud = NULL;
    CURL *e = msg->easy_handle;
    *code = (int)msg->data.result;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&ud);
    note_idle(m, e); /* while e is in the multi: its connection is found in the multi's cache */
    take_out(m, e);
    if (ud) return ud;
  }
  return NULL;
}
