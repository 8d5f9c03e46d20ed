/*
 * engine/token.c — the OAuth 2.0 client-credentials token (see token.h).
 *
 * A token is kept until min(60 s, 10 % of its lifetime) before expires_in
 * runs out. A missing expires_in counts as 300 s; others are clamped to
 * [1 s, 1 year]. Credentials go in HTTP Basic, each part form-urlencoded first
 * (RFC 6749 §2.3.1). A token with control or non-ASCII bytes (RFC 6750's
 * b64token is ASCII; NUL would cut it, CR/LF inject headers) or longer than
 * 16 KiB is refused, from the token endpoint and from a cache alike.
 */
#include "token.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tokjson.h"

#define DEFAULT_LIFETIME 300.0
#define MIN_LIFETIME 1.0          /* a shorter expires_in still lets the call use its token */
#define MAX_LIFETIME 31536000.0   /* a year: longer ones (1e300) are clamped */
#define MAX_TOKEN 16384           /* bytes; JWTs run to a few KiB */

/* expires_in (or a cached lifetime) as the engine uses it: missing, zero,
 * negative or not finite → 300 s; clamped to [1 s, 1 year]. */
static double sane_lifetime(double life) {
  if (!(life > 0) || isinf(life)) return DEFAULT_LIFETIME;
  if (life < MIN_LIFETIME) return MIN_LIFETIME;
  return life > MAX_LIFETIME ? MAX_LIFETIME : life;
}

/* Seconds before expiry at which a token is replaced. */
static double margin(double lifetime) {
  double m = lifetime * 0.1;
  return m < 60 ? m : 60;
}

/* See token.h. */
const char *hyp_token_problem(const char *access, size_t len) {
  if (!access || len == 0) return "has no access_token";
  if (len > MAX_TOKEN) return "has an access_token longer than 16384 bytes";
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)access[i];
    if (ch < 0x20 || ch >= 0x7f) return "has an access_token with a control or non-ASCII byte";
  }
  return NULL;
}

/* See token.h. */
void hyp_token_free(hyp_token *t) {
  hyp_free_secret(&t->access_token);
  hyp_free_secret(&t->refused);
  free(t->scope);
  t->scope = NULL;
  t->expires_at = t->lifetime = 0;
}

/* See token.h. */
int hyp_token_usable(const hyp_token *t, double now) {
  return t->access_token && now < t->expires_at - margin(t->lifetime);
}

/* Replaces the current token; takes ownership of access and scope. */
static void install(hyp_token *t, char *access, char *scope, double expires_at, double lifetime) {
  hyp_free_secret(&t->access_token);
  free(t->scope);
  t->access_token = access;
  t->scope = scope;
  t->expires_at = expires_at;
  t->lifetime = lifetime;
  t->gen++;
}

/* See token.h. */
int hyp_token_take_cached(hyp_token *t, const hyp_cached *c, double now) {
  if (!c || hyp_token_problem(c->access_token, c->access_len)) return 0;
  double life = sane_lifetime(c->lifetime);
  double exp = c->expires_at;
  if (!(exp > 0)) return 0;
  if (exp > now + MAX_LIFETIME) exp = now + MAX_LIFETIME;
  if (!(now < exp - margin(life))) return 0;
  if (t->refused && strcmp(t->refused, c->access_token) == 0) return 0;
  char *a = hyp_strdup(c->access_token), *s = hyp_strdup(c->scope);
  if (!a || (!s && c->scope)) {
    hyp_free_secret(&a);
    free(s);
    return 0;
  }
  install(t, a, s, exp, life);
  return 1;
}

/* See token.h. */
int hyp_token_request(const hyp_config *cfg, hyp_buf *lines, hyp_buf *body) {
  hyp_buf cred = {NULL, 0, 0}, b64 = {NULL, 0, 0};
  int bad = hyp_form_encode(&cred, cfg->client_id, strlen(cfg->client_id)) ||
            hyp_buf_addc(&cred, ':') ||
            hyp_form_encode(&cred, cfg->client_secret, strlen(cfg->client_secret)) ||
            hyp_base64(&b64, (const unsigned char *)cred.data, cred.len);
  hyp_buf_reset(lines);
  bad = bad || hyp_buf_addf(lines, "Authorization: Basic %s", b64.data) || hyp_buf_addc(lines, '\0') ||
        hyp_buf_adds(lines, "Content-Type: application/x-www-form-urlencoded") ||
        hyp_buf_addc(lines, '\0') || hyp_buf_adds(lines, "Accept: application/json") ||
        hyp_buf_addc(lines, '\0') || hyp_buf_addf(lines, "User-Agent: %s", cfg->user_agent) ||
        hyp_buf_addc(lines, '\0');
  hyp_buf_wipe(&cred);
  hyp_buf_wipe(&b64);
  hyp_buf_reset(body);
  bad = bad || hyp_buf_adds(body, "grant_type=client_credentials");
  if (cfg->scope)
    bad = bad || hyp_buf_adds(body, "&scope=") || hyp_form_encode(body, cfg->scope, strlen(cfg->scope));
  return bad ? -1 : 4;
}

/* See token.h. Reads access_token (required), token_type (Bearer when
 * present), expires_in (default 300 s) and scope (default: the one asked for). */
int hyp_token_accept(hyp_token *t, const hyp_config *cfg, const char *body, size_t n, double now,
                     char *msg, size_t msglen) {
  hyp_tokfields f;
  const char *why;
  if (hyp_tokjson_parse(body, n, &f, &why) != 0) {
    snprintf(msg, msglen, "token response %s", why);
    return -1;
  }
  int rc = -1;
  const char *problem = hyp_token_problem(f.access_token, f.access_len);
  if (problem) {
    snprintf(msg, msglen, "token response %s", problem);
  } else if (f.token_type && (strlen(f.token_type) != f.type_len || strcasecmp(f.token_type, "Bearer") != 0)) {
    snprintf(msg, msglen, "token response has token_type \"%.40s\", expected Bearer", f.token_type);
  } else {
    double life = sane_lifetime(f.has_expires_in ? f.expires_in : -1);
    const char *scope = f.scope && strlen(f.scope) == f.scope_len ? f.scope : cfg->scope;
    char *s = hyp_strdup(scope);
    if (!s && scope) {
      snprintf(msg, msglen, "out of memory");
    } else {
      install(t, f.access_token, s, now + life, life);
      f.access_token = NULL; /* now the engine's */
      f.access_len = 0;
      rc = 0;
    }
  }
  hyp_tokfields_free(&f);
  return rc;
}

/* See token.h. */
void hyp_token_refused(hyp_token *t, unsigned gen) {
  if (gen != t->gen || !t->access_token) return;
  hyp_free_secret(&t->refused);
  t->refused = t->access_token;
  t->access_token = NULL;
  t->expires_at = 0;
}
