/*
 * transport/redis.c — one blocking Redis connection over hiredis (see redis.h):
 * lazy connect with a timeout, AUTH and SELECT, one command at a time, the
 * connection dropped on any connection-level failure and made again by the
 * next command. hiredis's redisReply is handed out as the opaque
 * hyp_redis_reply and walked through the accessors at the end of the file.
 */
#define _POSIX_C_SOURCE 200809L
#include "redis.h"

#include "../engine/util.h"

#include <hiredis/hiredis.h>

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct hyp_redis {
  redisContext *c;          /* NULL while not connected */
  char *host;
  char *username;           /* NULL: AUTH with the password alone */
  char *password;           /* NULL: no AUTH */
  size_t password_len;
  int port, db;
  struct timeval tv;
};

/* The reply type is hiredis's own; the opaque name only hides it. */
#define RAW(x) ((redisReply *)(void *)(x))

/* See redis.h. */
hyp_redis *hyp_redis_new(const hyp_redis_config *cfg) {
  hyp_redis *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->port = cfg->port;
  r->db = cfg->db;
  double t = cfg->timeout > 0 ? cfg->timeout : 0.1;
  r->tv.tv_sec = (time_t)floor(t);
  r->tv.tv_usec = (suseconds_t)((t - floor(t)) * 1e6);
  if (r->tv.tv_sec == 0 && r->tv.tv_usec == 0) r->tv.tv_usec = 1; /* 0 would mean "no timeout" */
  r->host = hyp_strdup(cfg->host ? cfg->host : "127.0.0.1");
  if (cfg->username) r->username = hyp_strdup(cfg->username);
  if (cfg->password) {
    r->password = malloc(cfg->password_len + 1);
    if (r->password) {
      memcpy(r->password, cfg->password, cfg->password_len);
      r->password[cfg->password_len] = '\0';
      r->password_len = cfg->password_len;
    }
  }
  if (!r->host || (cfg->username && !r->username) || (cfg->password && !r->password)) {
    hyp_redis_free(r);
    return NULL;
  }
  return r;
}

/* See redis.h. */
void hyp_redis_disconnect(hyp_redis *r) {
  if (r && r->c) {
    redisFree(r->c);
    r->c = NULL;
  }
}

/* See redis.h. */
void hyp_redis_free(hyp_redis *r) {
  if (!r) return;
  hyp_redis_disconnect(r);
  if (r->password) hyp_wipe(r->password, r->password_len);
  free(r->password);
  free(r->username);
  free(r->host);
  free(r);
}

/* See redis.h. */
char *hyp_redis_message(const hyp_redis *r, const char *prefix, const char *s, size_t n, char *out,
                        size_t outlen) {
  static const char REDACTED[] = "[redacted]";
  size_t o = 0;
  if (!outlen) return out;
  for (; *prefix && o + 1 < outlen; prefix++) out[o++] = *prefix;
  size_t pn = (r && r->password) ? r->password_len : 0;
  for (size_t i = 0; i < n && o + 1 < outlen;) {
    if (pn && n - i >= pn && memcmp(s + i, r->password, pn) == 0) {
      for (const char *p = REDACTED; *p && o + 1 < outlen; p++) out[o++] = *p;
      i += pn;
    } else {
      out[o++] = s[i] ? s[i] : '?'; /* a message is one C string */
      i++;
    }
  }
  out[o] = '\0';
  return out;
}

/* The reason a failed context gives, for "connection: <reason>": "timeout" for
 * a wait that ran out (hiredis reports the errno of the socket call). */
static void connection_error(const hyp_redis *r, const redisContext *c, int saved_errno, char *err,
                             size_t errlen) {
  const char *why = c ? c->errstr : "out of memory";
  if (c && c->err == REDIS_ERR_IO &&
      (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == ETIMEDOUT ||
       strcmp(why, strerror(EAGAIN)) == 0 || strcmp(why, strerror(ETIMEDOUT)) == 0))
    why = "timeout";
  else if (!why[0])
    why = "failed";
  hyp_redis_message(r, "connection: ", why, strlen(why), err, errlen);
}

/* One command on the open connection: the reply, or NULL with the connection
 * closed and err filled. */
static redisReply *run(hyp_redis *r, int argc, const char **argv, const size_t *argvlen, char *err,
                       size_t errlen) {
  errno = 0;
  redisReply *x = redisCommandArgv(r->c, argc, argv, argvlen);
  int saved = errno;
  if (!x) {
    connection_error(r, r->c, saved, err, errlen);
    hyp_redis_disconnect(r);
  }
  return x;
}

/* Runs a handshake command (AUTH, SELECT): 0, or -1 with err filled and the
 * connection closed (an error reply: "redis: <message>"). */
static int handshake(hyp_redis *r, int argc, const char **argv, const size_t *argvlen, char *err,
                     size_t errlen) {
  redisReply *x = run(r, argc, argv, argvlen, err, errlen);
  if (!x) return -1;
  int ok = x->type != REDIS_REPLY_ERROR;
  if (!ok) hyp_redis_message(r, "redis: ", x->str ? x->str : "", x->str ? (size_t)x->len : 0, err, errlen);
  freeReplyObject(x);
  if (!ok) hyp_redis_disconnect(r);
  return ok ? 0 : -1;
}

/* Connects, authenticates and selects the database: 0, or -1 with err filled
 * (not connected then). */
static int connect_now(hyp_redis *r, char *err, size_t errlen) {
  errno = 0;
  redisContext *c = redisConnectWithTimeout(r->host, r->port, r->tv);
  int saved = errno;
  if (!c || c->err) {
    connection_error(r, c, saved, err, errlen);
    if (c) redisFree(c);
    return -1;
  }
  r->c = c;
  if (redisSetTimeout(c, r->tv) != REDIS_OK) { /* every later send and receive */
    connection_error(r, c, errno, err, errlen);
    hyp_redis_disconnect(r);
    return -1;
  }
  if (r->password) {
    const char *argv[3] = {"AUTH", r->username, r->password};
    size_t lens[3] = {4, r->username ? strlen(r->username) : 0, r->password_len};
    int argc = 3;
    if (!r->username) {
      argv[1] = r->password;
      lens[1] = r->password_len;
      argc = 2;
    }
    if (handshake(r, argc, argv, lens, err, errlen) != 0) return -1;
  }
  if (r->db != 0) {
    char db[24];
    int n = snprintf(db, sizeof db, "%d", r->db);
    const char *argv[2] = {"SELECT", db};
    size_t lens[2] = {6, (size_t)n};
    if (handshake(r, 2, argv, lens, err, errlen) != 0) return -1;
  }
  return 0;
}

/* True when the idle connection has something to read — EOF (the server
 * closed it, e.g. a restart), an error, or bytes nobody asked for: it cannot
 * carry a command then. Nothing has been sent, so replacing it is safe. */
static int stale(const hyp_redis *r) {
  struct pollfd p = {r->c->fd, POLLIN, 0};
  int n;
  do n = poll(&p, 1, 0);
  while (n < 0 && errno == EINTR);
  return n != 0;
}

/* SIGPIPE held back in this thread while a command writes to a socket the
 * server may have closed (hiredis writes without MSG_NOSIGNAL): blocked, and a
 * SIGPIPE raised meanwhile taken before the mask is restored. */
typedef struct sigpipe_guard {
  sigset_t old;
  int was_pending;
  int active;
} sigpipe_guard;

/* Blocks SIGPIPE in this thread, noting whether one was pending already. */
static void sigpipe_hold(sigpipe_guard *g) {
  sigset_t set, pending;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  g->active = pthread_sigmask(SIG_BLOCK, &set, &g->old) == 0;
  g->was_pending = g->active && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
}

/* Takes a SIGPIPE the command raised (not one pending before) and restores the mask. */
static void sigpipe_release(sigpipe_guard *g) {
  if (!g->active) return;
  sigset_t set, pending;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  if (!g->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
    struct timespec zero = {0, 0};
    int n;
    do n = sigtimedwait(&set, NULL, &zero);
    while (n < 0 && errno == EINTR);
  }
  pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* See redis.h. */
hyp_redis_reply *hyp_redis_command(hyp_redis *r, int argc, const char **argv, const size_t *argvlen,
                                   char *err, size_t errlen) {
  sigpipe_guard g;
  redisReply *x = NULL;
  if (errlen) err[0] = '\0';
  sigpipe_hold(&g);
  if (r->c && stale(r)) hyp_redis_disconnect(r);
  if (r->c || connect_now(r, err, errlen) == 0) x = run(r, argc, argv, argvlen, err, errlen);
  sigpipe_release(&g);
  return (hyp_redis_reply *)(void *)x;
}

/* See redis.h. */
int hyp_redis_reply_type(const hyp_redis_reply *x) {
  switch (RAW(x)->type) {
  case REDIS_REPLY_STRING: return HYP_REDIS_STRING;
  case REDIS_REPLY_STATUS: return HYP_REDIS_STATUS;
  case REDIS_REPLY_INTEGER: return HYP_REDIS_INTEGER;
  case REDIS_REPLY_NIL: return HYP_REDIS_NIL;
  case REDIS_REPLY_ARRAY: return HYP_REDIS_ARRAY;
  case REDIS_REPLY_ERROR: return HYP_REDIS_ERROR;
  default: return 0;
  }
}

/* See redis.h. */
const char *hyp_redis_reply_str(const hyp_redis_reply *x, size_t *len) {
  *len = RAW(x)->str ? (size_t)RAW(x)->len : 0;
  return RAW(x)->str ? RAW(x)->str : "";
}

/* See redis.h. */
long long hyp_redis_reply_integer(const hyp_redis_reply *x) { return RAW(x)->integer; }

/* See redis.h. */
size_t hyp_redis_reply_count(const hyp_redis_reply *x) {
  return RAW(x)->type == REDIS_REPLY_ARRAY ? RAW(x)->elements : 0;
}

/* See redis.h. */
const hyp_redis_reply *hyp_redis_reply_at(const hyp_redis_reply *x, size_t i) {
  return (const hyp_redis_reply *)(void *)RAW(x)->element[i];
}

/* See redis.h. */
void hyp_redis_reply_free(hyp_redis_reply *x) {
  if (x) freeReplyObject(x);
}
