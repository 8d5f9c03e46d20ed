/*
 * engine/token.h — the OAuth 2.0 client-credentials token (RFC 6749 §4.4):
 * when it may be used, the token request, the token answer, a token handed
 * over by a cache, a token the API refused. Pure C99 + libc.
 */
#ifndef HYP_ENGINE_TOKEN_H
#define HYP_ENGINE_TOKEN_H

#include <stddef.h>

#include "config.h"
#include "util.h"

typedef struct hyp_token {
  char *access_token;      /* NULL: none (never holds NUL, CR, LF: see hyp_token_problem) */
  double expires_at;       /* wall clock */
  double lifetime;         /* expires_in as received (clamped) */
  char *scope;
  unsigned gen;            /* bumped for every new token */
  char *refused;           /* last token the API refused (not taken from a cache again) */
} hyp_token;

/* A token cache's answer (pointers owned by the caller): a token; or no
 * token, and then one of: a ticket (this call fetches, and hands the ticket
 * back when it stores the token or gives up), a wait (another fetch is out:
 * ask again after that long), a denial (the token endpoint refused these
 * credentials moments ago: fail with it), or nothing (a plain miss). */
typedef struct hyp_cached {
  const char *access_token;
  size_t access_len;
  double expires_at;       /* 0 when absent */
  double lifetime;         /* 0 when absent */
  const char *scope;       /* NULL when absent */
  const char *ticket;      /* NULL when absent */
  size_t ticket_len;
  double wait;             /* > 0: ask again after this many seconds */
  long denied_status;      /* > 0: a remembered refusal, with its message */
  const char *denied_message;
  int failed;              /* the cache could not be asked (it raised): a miss; with a shared
                              store, its breaker opens */
} hyp_cached;

/* True when the token may be sent now (before the refresh margin). */
int hyp_token_usable(const hyp_token *t, double now);
/* Why a token cannot go into an Authorization header (empty, over 16 KiB,
 * control or non-ASCII bytes), or NULL. Never quotes the token. */
const char *hyp_token_problem(const char *access, size_t len);
/* Installs a cached token when it is usable, sane and not the refused one.
 * Returns 1 when installed, 0 otherwise (a miss). */
int hyp_token_take_cached(hyp_token *t, const hyp_cached *c, double now);
/* Builds the token request: header lines "Name: value\0" into lines (Basic
 * credentials, each part form-encoded first; content type; accept; user
 * agent) and the form body. Returns the number of header lines, -1 on ENOMEM. */
int hyp_token_request(const hyp_config *cfg, hyp_buf *lines, hyp_buf *body);
/* Reads a 2xx token answer. Returns 0 (installed), or -1 with msg. */
int hyp_token_accept(hyp_token *t, const hyp_config *cfg, const char *body, size_t n, double now,
                     char *msg, size_t msglen);
/* The API refused the token of generation gen: forget it (if still current)
 * and remember it, so a cache cannot hand it back. */
void hyp_token_refused(hyp_token *t, unsigned gen);
/* Frees the strings, wiping the secret ones. */
void hyp_token_free(hyp_token *t);

#endif
