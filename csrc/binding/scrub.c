/*
 * binding/scrub.c — keeps the client's secrets out of every error and hook value.
 *
 * A server may echo the request (the Authorization header, the Basic
 * credentials, the form body) into an error body, a header or a message, and
 * a driver's failure text may quote anything. Before an error reaches the
 * caller, and before a hook sees its info table, every string in it — keys
 * and values, nested tables included — has each secret replaced by
 * "[redacted]": the client secret (raw and form-encoded), the Basic
 * credential value, the current token and the last refused one. Secrets
 * shorter than 4 bytes are left alone (they would blank ordinary text).
 */
#include "binding.h"

#include <stdlib.h>
#include <string.h>

#define REDACTED "[redacted]"
#define MAX_SECRETS 6
#define MIN_SECRET 4
#define MAX_DEPTH 16

typedef struct secrets {
  const char *s[MAX_SECRETS];
  size_t n[MAX_SECRETS];
  int count;
  hyp_buf form, cred, basic; /* derived values, wiped after use */
} secrets;

static void add(secrets *S, const char *s, size_t n) {
  if (!s || n < MIN_SECRET || S->count >= MAX_SECRETS) return;
  for (int i = 0; i < S->count; i++)
    if (S->n[i] == n && memcmp(S->s[i], s, n) == 0) return;
  /* longest first, so a secret inside a longer one cannot break it up */
  int i = S->count++;
  while (i > 0 && S->n[i - 1] < n) {
    S->s[i] = S->s[i - 1];
    S->n[i] = S->n[i - 1];
    i--;
  }
  S->s[i] = s;
  S->n[i] = n;
}

/* Collects the engine's secrets (the derived ones are built here). */
static void collect(const hyp_engine *E, secrets *S) {
  memset(S, 0, sizeof *S);
  const char *id = E->cfg.client_id, *secret = E->cfg.client_secret;
  if (secret) {
    add(S, secret, strlen(secret));
    if (hyp_form_encode(&S->form, secret, strlen(secret)) == 0 && S->form.data)
      add(S, S->form.data, S->form.len);
    if (id && hyp_form_encode(&S->cred, id, strlen(id)) == 0 && hyp_buf_addc(&S->cred, ':') == 0 &&
        hyp_form_encode(&S->cred, secret, strlen(secret)) == 0 &&
        hyp_base64(&S->basic, (const unsigned char *)S->cred.data, S->cred.len) == 0 && S->basic.data)
      add(S, S->basic.data, S->basic.len);
  }
  if (E->token.access_token) add(S, E->token.access_token, strlen(E->token.access_token));
  if (E->token.refused) add(S, E->token.refused, strlen(E->token.refused));
}

static void release(secrets *S) {
  hyp_buf_wipe(&S->form);
  hyp_buf_wipe(&S->cred);
  hyp_buf_wipe(&S->basic);
}

/* First occurrence of needle in hay, or NULL. */
static const char *find(const char *hay, size_t hn, const char *needle, size_t nn) {
  if (nn > hn) return NULL;
  const char *end = hay + (hn - nn) + 1;
  for (const char *p = hay; (p = memchr(p, needle[0], (size_t)(end - p))); p++)
    if (memcmp(p, needle, nn) == 0) return p;
  return NULL;
}

/* If the string at idx holds a secret, pushes the scrubbed copy and returns
 * 1; else pushes nothing and returns 0. */
static int scrub_string(lua_State *L, int idx, const secrets *S) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  int i = 0;
  while (i < S->count && !find(s, len, S->s[i], S->n[i])) i++;
  if (i == S->count) return 0;
  hyp_buf a = {NULL, 0, 0}, b = {NULL, 0, 0};
  if (hyp_buf_add(&a, s, len)) {
    lua_pushliteral(L, REDACTED); /* out of memory: the whole string goes */
    return 1;
  }
  for (; i < S->count; i++) {
    const char *p = a.data, *end = p ? p + a.len : NULL, *hit; /* no NULL + 0 (UB) */
    if (!find(p, a.len, S->s[i], S->n[i])) continue;
    hyp_buf_reset(&b);
    int bad = 0;
    while ((hit = find(p, (size_t)(end - p), S->s[i], S->n[i]))) {
      bad |= hyp_buf_add(&b, p, (size_t)(hit - p)) || hyp_buf_adds(&b, REDACTED);
      p = hit + S->n[i];
    }
    bad |= hyp_buf_add(&b, p, (size_t)(end - p));
    if (bad) {
      hyp_buf_wipe(&a);
      hyp_buf_wipe(&b);
      lua_pushliteral(L, REDACTED);
      return 1;
    }
    hyp_buf t = a;
    a = b;
    b = t;
  }
  lua_pushlstring(L, a.data, a.len);
  hyp_buf_wipe(&a);
  hyp_buf_wipe(&b);
  return 1;
}

/* Scrubs the table at idx in place: values, nested tables, then keys. */
static void scrub_table(lua_State *L, int idx, const secrets *S, int depth) {
  if (depth > MAX_DEPTH) return;
  luaL_checkstack(L, 8, "hypatos scrub");
  int renamed = 0; /* a list of keys to rename, created when needed */
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int v = lua_gettop(L);
    if (lua_type(L, v) == LUA_TSTRING && scrub_string(L, v, S)) {
      lua_pushvalue(L, v - 1);
      lua_insert(L, -2);
      lua_rawset(L, idx); /* an existing field: allowed during traversal */
    } else if (lua_type(L, v) == LUA_TTABLE) {
      scrub_table(L, v, S, depth + 1);
    }
    lua_settop(L, v);
    if (lua_type(L, v - 1) == LUA_TSTRING && scrub_string(L, v - 1, S)) {
      lua_pop(L, 1);
      if (!renamed) {
        lua_newtable(L);
        lua_insert(L, v - 1); /* below key and value */
        renamed = v - 1;
        v++;
      }
      lua_pushvalue(L, v - 1);
      lua_rawseti(L, renamed, (int)lua_rawlen(L, renamed) + 1);
    }
    lua_settop(L, v - 1); /* the key, for lua_next */
  }
  if (!renamed) return;
  int n = (int)lua_rawlen(L, renamed);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, renamed, i);       /* old key */
    int k = lua_gettop(L);
    scrub_string(L, k, S);            /* new key */
    lua_pushvalue(L, k);
    lua_rawget(L, idx);               /* value */
    lua_pushvalue(L, k);
    lua_pushnil(L);
    lua_rawset(L, idx);               /* old key gone */
    lua_rawset(L, idx);               /* new key = value */
    lua_settop(L, k - 1);
  }
  lua_remove(L, renamed);
}

/* See binding.h. */
void hyp_scrub(lua_State *L, int idx, const hyp_engine *E) {
  idx = lua_absindex(L, idx);
  secrets S;
  collect(E, &S);
  if (S.count) {
    if (lua_type(L, idx) == LUA_TTABLE) {
      scrub_table(L, idx, &S, 0);
    } else if (lua_type(L, idx) == LUA_TSTRING && scrub_string(L, idx, &S)) {
      lua_replace(L, idx);
    }
  }
  release(&S);
}
