/*
 * transport/redis.h — one blocking Redis connection over hiredis (0.14: RESP2,
 * no TLS), behind a small plain-C interface: the binding (binding/redis.c)
 * never sees hiredis's types. Includes hiredis, never lua.h.
 *
 *   hyp_redis *r = hyp_redis_new(&cfg);           -- copies cfg; never connects
 *   hyp_redis_reply *x = hyp_redis_command(r, argc, argv, argvlen, err, sizeof err);
 *   ... walk x with hyp_redis_reply_*(), then hyp_redis_reply_free(x) ...
 *   hyp_redis_free(r);                            -- closes, wipes the password
 *
 * Connecting is lazy: the first command connects (timeout bounded), sends AUTH
 * when a password is set and SELECT when db is not 0. A connection-level
 * failure (I/O error, timeout, EOF, protocol error) closes the connection; the
 * next command connects again. Every wait (connect, send, receive) is bounded
 * by cfg.timeout. SIGPIPE is held back while a command runs: a server that
 * goes away never kills the process.
 */
#ifndef HYP_TRANSPORT_REDIS_H
#define HYP_TRANSPORT_REDIS_H

#include <stddef.h>

typedef struct hyp_redis hyp_redis;
typedef struct hyp_redis_reply hyp_redis_reply; /* hiredis's reply, opaque */

typedef struct hyp_redis_config {
  const char *host;          /* name or address (DNS through hiredis, getaddrinfo) */
  int port;
  int db;                    /* SELECT db after connecting, unless 0 */
  const char *username;      /* NULL: AUTH password (the default user) */
  const char *password;      /* NULL: no AUTH */
  size_t password_len;       /* the password may hold any byte */
  double timeout;            /* seconds (> 0): connect, and each send and receive */
} hyp_redis_config;

/* The kinds of reply (RESP2). */
enum {
  HYP_REDIS_STRING = 1,      /* bulk string */
  HYP_REDIS_STATUS,          /* "+OK" */
  HYP_REDIS_INTEGER,
  HYP_REDIS_NIL,             /* nil bulk string or nil array */
  HYP_REDIS_ARRAY,
  HYP_REDIS_ERROR            /* "-ERR …" */
};

/* A connection with a copy of cfg, not connected yet; NULL on ENOMEM. */
hyp_redis *hyp_redis_new(const hyp_redis_config *cfg);
/* Closes the connection, wipes the password and frees r (NULL is fine). */
void hyp_redis_free(hyp_redis *r);
/* Closes the connection (the next command reconnects). */
void hyp_redis_disconnect(hyp_redis *r);

/* Runs one command (connecting first when needed; a connection the server has
 * closed meanwhile is replaced before anything is sent). Returns the reply —
 * an error reply included: the server answered — or NULL with a message in
 * err: "connection: <reason>" ("connection: timeout", "connection: Connection
 * refused", …) when the connection failed (it is closed then), or "redis:
 * <message>" when the server refused AUTH or SELECT. Never shows the password. */
hyp_redis_reply *hyp_redis_command(hyp_redis *r, int argc, const char **argv, const size_t *argvlen,
                                   char *err, size_t errlen);

/* Writes prefix and the n bytes of s into out (NUL-terminated, cut to outlen),
 * every occurrence of r's password replaced by "[redacted]". Returns out. */
char *hyp_redis_message(const hyp_redis *r, const char *prefix, const char *s, size_t n, char *out,
                        size_t outlen);

/* Walking a reply. */
int hyp_redis_reply_type(const hyp_redis_reply *x);                  /* HYP_REDIS_* (0: unknown) */
const char *hyp_redis_reply_str(const hyp_redis_reply *x, size_t *len); /* STRING, STATUS, ERROR */
long long hyp_redis_reply_integer(const hyp_redis_reply *x);          /* INTEGER */
size_t hyp_redis_reply_count(const hyp_redis_reply *x);               /* ARRAY: its elements */
const hyp_redis_reply *hyp_redis_reply_at(const hyp_redis_reply *x, size_t i); /* ARRAY: i < count */
void hyp_redis_reply_free(hyp_redis_reply *x);                        /* NULL is fine */

#endif
