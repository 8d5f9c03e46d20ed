/*
 * token.c — the OAuth 2.0 client-credentials token (RFC 6749 §4.4).
 *
 * The token is fetched lazily, kept until min(60 s, 10% of its lifetime)
 * before expires_in runs out, and shared through an optional cache
 * ({get = fn(key), set = fn(key, token)}) so processes or nginx workers can
 * use one token. A missing expires_in counts as 300 s; others are clamped to
 * [1 s, 1 year]. Credentials go in HTTP
 * Basic, each part form-urlencoded first (RFC 6749 §2.3.1). The engine
 * (engine.c) decides when to call these functions.
 */
#include "hypatos.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_LIFETIME 300.0
#define MIN_LIFETIME 1.0          /* a shorter expires_in still lets the call use its token */
#define MAX_LIFETIME 31536000.0   /* a year: longer ones (1e300) are clamped */

/* expires_in (or a cached lifetime) as the engine uses it: missing, zero,
 * negative or not finite → 300 s; clamped to [1 s, 1 year]. */
static double sane_lifetime(double life) {
  if (!(life > 0) || isinf(life)) return DEFAULT_LIFETIME;
  if (life < MIN_LIFETIME) return MIN_LIFETIME;
  return life > MAX_LIFETIME ? MAX_LIFETIME : life;
}

#define MAX_TOKEN 16384 /* bytes; JWTs run to a few KiB, a header line must stay sane */

/* Why an access token cannot go into an Authorization header, or NULL when
 * it can: empty, longer than MAX_TOKEN, or holding a control character or a
 * byte outside ASCII (RFC 6750 b64token is ASCII; NUL would cut it, CR/LF
 * would inject headers). The reason never quotes the token. */
static const char *token_problem(const char *access, size_t len) {
  if (!access || len == 0) return "has no access_token";
  if (len > MAX_TOKEN) return "has an access_token longer than 16384 bytes";
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)access[i];
    if (ch < 0x20 || ch >= 0x7f) return "has an access_token with a control or non-ASCII byte";
  }
  return NULL;
}

/* Seconds before expiry at which a token is replaced. */
static double margin(double lifetime) {
  double m = lifetime * 0.1;
  return m < 60 ? m : 60;
}

/* Frees the token strings, wiping the secret ones. */
void hyp_token_free(hyp_token *t) {
  hyp_free_secret(&t->access_token);
  hyp_free_secret(&t->refused);
  free(t->scope);
  t->scope = NULL;
  t->expires_at = t->lifetime = 0;
}

/* True when the current token may be sent now. */
int hyp_token_usable(const hyp_engine *E, double now) {
  const hyp_token *t = &E->token;
  return t->access_token && now < t->expires_at - margin(t->lifetime);
}

/* Replaces the current token; takes ownership of access and scope. */
static void install(hyp_engine *E, char *access, char *scope, double expires_at,
                    double lifetime) {
  hyp_free_secret(&E->token.access_token);
  free(E->token.scope);
  E->token.access_token = access;
  E->token.scope = scope;
  E->token.expires_at = expires_at;
  E->token.lifetime = lifetime;
  E->token.gen++;
}

/* Calls the cache's get in protected mode; installs a usable token from it.
 * A failing or odd cache is treated as a miss. Returns 1 when installed. */
int hyp_token_from_cache(lua_State *L, int client_idx, hyp_engine *E, double now) {
  if (!E->opt.has_cache) return 0;
  int top = lua_gettop(L);
  hyp_client_getuv(L, client_idx, ".token_cache_get");
  lua_pushstring(L, E->cache_key);
  int installed = 0;
  if (lua_pcall(L, 1, 1, 0) == 0 && lua_type(L, -1) == LUA_TTABLE) {
    lua_getfield(L, -1, "access_token");
    lua_getfield(L, -2, "expires_at");
    lua_getfield(L, -3, "scope");
    lua_getfield(L, -4, "lifetime");
    size_t alen = 0;
    const char *access = lua_type(L, -4) == LUA_TSTRING ? lua_tolstring(L, -4, &alen) : NULL;
    double exp = lua_type(L, -3) == LUA_TNUMBER ? (double)lua_tonumber(L, -3) : 0;
    const char *scope = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    double life = lua_type(L, -1) == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : 0;
    life = sane_lifetime(life);
    if (exp > now + MAX_LIFETIME) exp = now + MAX_LIFETIME;
    if (!token_problem(access, alen) && now < exp - margin(life) &&
        !(E->token.refused && strcmp(E->token.refused, access) == 0)) {
      char *a = hyp_strdup(access), *s = hyp_strdup(scope);
      if (a && (s || !scope)) {
        install(E, a, s, exp, life);
        installed = 1;
      } else {
        hyp_free_secret(&a);
        free(s);
      }
    }
  }
  lua_settop(L, top);
  return installed;
}

/* Offers the current token to the cache's set; errors are ignored. */
static void cache_store(lua_State *L, int client_idx, hyp_engine *E) {
  if (!E->opt.has_cache) return;
  int top = lua_gettop(L);
  hyp_client_getuv(L, client_idx, ".token_cache_set");
  lua_pushstring(L, E->cache_key);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, E->token.access_token);
  lua_setfield(L, -2, "access_token");
  lua_pushnumber(L, E->token.expires_at);
  lua_setfield(L, -2, "expires_at");
  lua_pushnumber(L, E->token.lifetime);
  lua_setfield(L, -2, "lifetime");
  if (E->token.scope) {
    lua_pushstring(L, E->token.scope);
    lua_setfield(L, -2, "scope");
  }
  lua_pcall(L, 2, 0, 0);
  lua_settop(L, top);
}

/* Fills c->out with the token request: POST token_url, Basic credentials,
 * grant_type=client_credentials[&scope=…]. */
void hyp_token_request(hyp_engine *E, hyp_call *c) {
  const hyp_options *o = &E->opt;
  hyp_buf cred = {NULL, 0, 0}, b64 = {NULL, 0, 0};
  int bad = hyp_form_encode(&cred, o->client_id, strlen(o->client_id)) ||
            hyp_buf_addc(&cred, ':') ||
            hyp_form_encode(&cred, o->client_secret, strlen(o->client_secret)) ||
            hyp_base64(&b64, (const unsigned char *)cred.data, cred.len);
  hyp_buf_reset(&c->lines);
  bad = bad || hyp_buf_addf(&c->lines, "Authorization: Basic %s", b64.data) ||
        hyp_buf_addc(&c->lines, '\0') ||
        hyp_buf_adds(&c->lines, "Content-Type: application/x-www-form-urlencoded") ||
        hyp_buf_addc(&c->lines, '\0') || hyp_buf_adds(&c->lines, "Accept: application/json") ||
        hyp_buf_addc(&c->lines, '\0') || hyp_buf_addf(&c->lines, "User-Agent: %s", o->user_agent) ||
        hyp_buf_addc(&c->lines, '\0');
  hyp_buf_wipe(&cred);
  hyp_buf_wipe(&b64);
  hyp_buf_reset(&c->tokbody);
  bad = bad || hyp_buf_adds(&c->tokbody, "grant_type=client_credentials");
  if (o->scope)
    bad = bad || hyp_buf_adds(&c->tokbody, "&scope=") ||
          hyp_form_encode(&c->tokbody, o->scope, strlen(o->scope));
  (void)bad; /* on ENOMEM the request goes out incomplete and is refused */
  memset(&c->out, 0, sizeof c->out);
  c->out.method = "POST";
  c->out.url = o->token_url;
  c->out.headers = &c->lines;
  c->out.nheaders = 4;
  c->out.body_kind = HYP_BODY_MEMORY;
  c->out.body = c->tokbody.data ? c->tokbody.data : "";
  c->out.body_len = c->tokbody.len;
  c->out.connect_timeout = o->connect_timeout;
  c->out.is_token = 1;
}

/* Reads a 2xx token response: access_token (required), token_type (Bearer
 * when present), expires_in (default 300 s), scope. Returns 0 or -1 + msg. */
int hyp_token_accept(lua_State *L, int client_idx, hyp_engine *E, const hyp_result *res,
                     double now, char *msg, size_t msglen) {
  int top = lua_gettop(L);
  if (!hyp_json_decode(L, res->body.data ? res->body.data : "", res->body.len)) {
    snprintf(msg, msglen, "token response is not valid JSON");
    lua_settop(L, top);
    return -1;
  }
  if (lua_type(L, -1) != LUA_TTABLE) {
    snprintf(msg, msglen, "token response is not a JSON object");
    lua_settop(L, top);
    return -1;
  }
  int t = lua_gettop(L);
  lua_getfield(L, t, "access_token");
  lua_getfield(L, t, "token_type");
  lua_getfield(L, t, "expires_in");
  lua_getfield(L, t, "scope");
  size_t alen = 0;
  const char *access = lua_type(L, t + 1) == LUA_TSTRING ? lua_tolstring(L, t + 1, &alen) : NULL;
  const char *type = lua_type(L, t + 2) == LUA_TSTRING ? lua_tostring(L, t + 2) : NULL;
  double life = lua_type(L, t + 3) == LUA_TNUMBER ? (double)lua_tonumber(L, t + 3) : -1;
  const char *scope = lua_type(L, t + 4) == LUA_TSTRING ? lua_tostring(L, t + 4) : NULL;
  int rc = -1;
  const char *problem = token_problem(access, alen);
  if (problem)
    snprintf(msg, msglen, "token response %s", problem);
  else if (type && strcasecmp(type, "Bearer") != 0)
    snprintf(msg, msglen, "token response has token_type \"%.40s\", expected Bearer", type);
  else {
    life = sane_lifetime(life);
    char *a = hyp_strdup(access), *s = hyp_strdup(scope ? scope : E->opt.scope);
    if (!a || (!s && (scope || E->opt.scope))) {
      hyp_free_secret(&a);
      free(s);
      snprintf(msg, msglen, "out of memory");
    } else {
      install(E, a, s, now + life, life);
      rc = 0;
    }
  }
  lua_settop(L, top);
  if (rc == 0) cache_store(L, client_idx, E);
  return rc;
}

/* The API refused the token of generation gen: forget it (if still current)
 * and remember it so the cache cannot hand it back. */
void hyp_token_refused(hyp_engine *E, unsigned gen) {
  hyp_token *t = &E->token;
  if (gen != t->gen || !t->access_token) return;
  hyp_free_secret(&t->refused);
  t->refused = t->access_token;
  t->access_token = NULL;
  t->expires_at = 0;
}

/* __tostring of a token table: never shows the token itself. */
static int token_tostring(lua_State *L) {
  lua_getfield(L, 1, "scope");
  lua_getfield(L, 1, "expires_in");
  double e = (double)lua_tonumber(L, -1); /* the caller may have changed it: no cast */
  char life[32];
  if (isfinite(e) && fabs(e) < 1e15)
    snprintf(life, sizeof life, "%.0f", trunc(e));
  else
    snprintf(life, sizeof life, "%s", isnan(e) ? "?" : e > 0 ? "inf" : "-inf");
  lua_pushfstring(L, "hypatos.Token(scope=\"%s\", expires_in=%s, access_token=<redacted>)",
                  lua_tostring(L, -2) ? lua_tostring(L, -2) : "", life);
  return 1;
}

/* Pushes {access_token, token_type, expires_at, expires_in, scope, scopes}. */
void hyp_token_push(lua_State *L, const hyp_engine *E, double now) {
  const hyp_token *t = &E->token;
  lua_createtable(L, 0, 6);
  lua_pushstring(L, t->access_token);
  lua_setfield(L, -2, "access_token");
  lua_pushliteral(L, "Bearer");
  lua_setfield(L, -2, "token_type");
  lua_pushnumber(L, t->expires_at);
  lua_setfield(L, -2, "expires_at");
  lua_pushnumber(L, t->expires_at - now);
  lua_setfield(L, -2, "expires_in");
  const char *scope = t->scope ? t->scope : "";
  lua_pushstring(L, scope);
  lua_setfield(L, -2, "scope");
  lua_newtable(L);
  int n = 0;
  for (const char *p = scope; *p;) {
    size_t len = strcspn(p, " ");
    if (len) {
      lua_pushlstring(L, p, len);
      lua_rawseti(L, -2, ++n);
    }
    p += len;
    while (*p == ' ') p++;
  }
  lua_setfield(L, -2, "scopes");
  if (luaL_newmetatable(L, HYP_TOKEN_MT)) {
    lua_pushcfunction(L, token_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_setmetatable(L, -2);
}
