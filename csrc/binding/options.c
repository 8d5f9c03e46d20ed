/*
 * binding/options.c — the options table of hypatos.new(): every key, its type, its
 * default and its check in one place (README "Options" mirrors this file).
 * Misuse raises an error that names the key; unknown keys are rejected; the
 * caller's table is only read.
 */
#define _POSIX_C_SOURCE 200809L
#include "binding.h"

#include "../engine/urls.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define EU_URL "https://api.cloud.hypatos.ai/v2"
#define US_URL "https://api.cloud.hypatos.com/v2"

enum { T_STRING, T_NUMBER, T_INTEGER, T_BOOLEAN, T_FUNCTION, T_SCOPE, T_CACHE, T_STORE };

typedef struct optspec {
  const char *name;
  int type;
  double min;              /* numbers: smallest allowed value */
  int exclusive;           /* numbers: value must be > min */
  double max;              /* numbers: largest allowed value, 0 = none */
} optspec;

#define MAX_BODY_DEFAULT (64.0 * 1024 * 1024) /* bytes of an answer held in memory */
#define MAX_BODY_LIMIT 1e12

/* Every option hypatos.new() accepts. */
static const optspec SPECS[] = {
    {"client_id", T_STRING, 0, 0, 0},       {"client_secret", T_STRING, 0, 0, 0},
    {"region", T_STRING, 0, 0, 0},          {"base_url", T_STRING, 0, 0, 0},
    {"token_url", T_STRING, 0, 0, 0},       {"scope", T_SCOPE, 0, 0, 0},
    {"timeout", T_NUMBER, 0, 1, HYP_MAX_SECONDS},
    {"connect_timeout", T_NUMBER, 0, 1, HYP_MAX_SECONDS},
    {"token_timeout", T_NUMBER, 0, 1, HYP_MAX_SECONDS},
    {"deadline", T_NUMBER, 0, 1, HYP_MAX_SECONDS},
    {"max_retries", T_INTEGER, 0, 0, HYP_MAX_RETRIES},
    {"backoff_base", T_NUMBER, 0, 1, HYP_MAX_SECONDS},
    {"backoff_cap", T_NUMBER, 0, 1, HYP_MAX_SECONDS},
    {"max_wait", T_NUMBER, 0, 0, HYP_MAX_SECONDS},
    {"throttle", T_BOOLEAN, 0, 0, 0},       {"ca_file", T_STRING, 0, 0, 0},
    {"proxy", T_STRING, 0, 0, 0},           {"user_agent", T_STRING, 0, 0, 0},
    {"token_cache", T_CACHE, 0, 0, 0},      {"store", T_STORE, 0, 0, 0},
    {"on_request", T_FUNCTION, 0, 0, 0},
    {"on_response", T_FUNCTION, 0, 0, 0},   {"random", T_FUNCTION, 0, 0, 0},
    {"max_body_size", T_INTEGER, 1, 0, MAX_BODY_LIMIT},
    {NULL, 0, 0, 0, 0}};

static const char *TYPE_NAMES[] = {"a string", "a number", "an integer", "a boolean",
                                   "a function", "a string or an array of strings",
                                   "a table with get and set functions (and optionally release)",
                                   "a store (a table with acquire, get, set and release functions)"};

#define opt_error(L, ...) hyp_misuse((L), "hypatos.new", __VA_ARGS__)

static const optspec *find_spec(const char *name) {
  for (const optspec *s = SPECS; s->name; s++)
    if (strcmp(s->name, name) == 0) return s;
  return NULL;
}

/* Checks the value on the top of the stack against spec s. */
static void check_type(lua_State *L, const optspec *s) {
  int t = lua_type(L, -1);
  int ok = 0;
  switch (s->type) {
  case T_STRING: ok = t == LUA_TSTRING; break;
  case T_NUMBER: ok = t == LUA_TNUMBER; break;
  case T_INTEGER: ok = t == LUA_TNUMBER && lua_isinteger(L, -1); break;
  case T_BOOLEAN: ok = t == LUA_TBOOLEAN; break;
  case T_FUNCTION: ok = t == LUA_TFUNCTION; break;
  case T_SCOPE: ok = t == LUA_TSTRING || t == LUA_TTABLE; break;
  case T_CACHE: ok = t == LUA_TTABLE; break;
  case T_STORE: ok = t == LUA_TTABLE; break;
  }
  if (!ok)
    opt_error(L, "option \"%s\" must be %s, got %s", s->name, TYPE_NAMES[s->type],
              (t == LUA_TNUMBER && s->type == T_INTEGER) ? "a non-integer number" : luaL_typename(L, -1));
  if (s->type == T_NUMBER || s->type == T_INTEGER) {
    double v = (double)lua_tonumber(L, -1);
    if (isnan(v) || isinf(v) || (s->exclusive ? v <= s->min : v < s->min))
      opt_error(L, "option \"%s\" must be %s %g, got %g", s->name, s->exclusive ? ">" : ">=",
                s->min, v);
    if (s->max > 0 && v > s->max)
      opt_error(L, "option \"%s\" must be <= %.15g, got %g", s->name, s->max, v);
  }
  if (s->type == T_STRING) {
    size_t n;
    const char *v = lua_tolstring(L, -1, &n);
    if (n == 0) opt_error(L, "option \"%s\" must not be empty", s->name);
    if (strlen(v) != n || strpbrk(v, "\r\n"))
      opt_error(L, "option \"%s\" must not contain CR, LF or NUL", s->name);
  }
}

/* Duplicates a string or raises on ENOMEM. */
static char *dup_or_raise(lua_State *L, const char *s) {
  char *p = hyp_strdup(s);
  if (s && !p) luaL_error(L, "hypatos.new: out of memory");
  return p;
}

/* Joins a scope option (string or array of strings) into one string. */
static char *read_scope(lua_State *L) {
  if (lua_type(L, -1) == LUA_TSTRING) return dup_or_raise(L, lua_tostring(L, -1));
  luaL_Buffer b;
  int t = lua_gettop(L);
  size_t n = lua_rawlen(L, t);
  luaL_buffinit(L, &b);
  for (size_t i = 1; i <= n; i++) {
    lua_rawgeti(L, t, (int)i);
    if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) == 0 ||
        strpbrk(lua_tostring(L, -1), " \r\n"))
      opt_error(L, "option \"scope\" item %d must be a scope name (a string without spaces)",
                (int)i);
    if (i > 1) luaL_addchar(&b, ' ');
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  char *s = dup_or_raise(L, lua_tostring(L, -1));
  lua_pop(L, 1);
  return s;
}

/* Copies a URL option after checking it, dropping trailing slashes. A refused
 * URL is echoed as scheme, host and path only (a query may hold a key); one
 * with user info not at all. */
static char *read_url(lua_State *L, const char *name, const char *url) {
  const char *why = hyp_check_url(url);
  if (why && hyp_has_userinfo(url)) opt_error(L, "option \"%s\" %s", name, why); /* never echo a secret */
  if (why) {
    char *shown = HYP_NEWUSERDATA(L, strlen(url) + 1); /* collected, though opt_error never returns */
    hyp_url_shown(url, shown, strlen(url) + 1);
    opt_error(L, "option \"%s\" %s, got \"%s\"", name, why, shown);
  }
  char *s = dup_or_raise(L, url);
  size_t n = strlen(s);
  while (n > 0 && s[n - 1] == '/') s[--n] = '\0';
  return s;
}

/* Stores a Lua value option (top of stack) in the user-value table. */
static void keep_value(lua_State *L, int uv_idx, const char *k) {
  lua_pushfstring(L, ".%s", k);
  lua_pushvalue(L, -2);
  lua_rawset(L, uv_idx);
}

/* Keeps the token cache's functions: get and set, and release when present
 * (a function, or absent). */
static void read_cache(lua_State *L, int uv_idx) {
  int t = lua_gettop(L);
  if (hyp_getfield(L, t, "get") != LUA_TFUNCTION || hyp_getfield(L, t, "set") != LUA_TFUNCTION)
    opt_error(L, "option \"token_cache\" must be %s", TYPE_NAMES[T_CACHE]);
  int rt = hyp_getfield(L, t, "release");
  if (rt != LUA_TNIL && rt != LUA_TFUNCTION)
    opt_error(L, "option \"token_cache\": release must be a function, got %s", lua_typename(L, rt));
  lua_setfield(L, uv_idx, ".token_cache_release");
  lua_setfield(L, uv_idx, ".token_cache_set");
  lua_setfield(L, uv_idx, ".token_cache_get");
}

/* Keeps a shared store's functions (the value on the top of the stack): acquire
 * (the quota), and get, set, release (the token: the token cache protocol). */
static void read_store(lua_State *L, int uv_idx) {
  int t = lua_gettop(L);
  static const char *const FNS[] = {"acquire", "get", "set", "release"};
  static const char *const KEEP[] = {".store_acquire", ".token_cache_get", ".token_cache_set",
                                     ".token_cache_release"};
  for (int i = 0; i < 4; i++) {
    if (hyp_getfield(L, t, FNS[i]) != LUA_TFUNCTION)
      opt_error(L, "option \"store\" must be %s (%s is missing)", TYPE_NAMES[T_STORE], FNS[i]);
    lua_setfield(L, uv_idx, KEEP[i]);
  }
}

/* Reads a number option value from the table at idx, or returns dflt. */
static double num_or(lua_State *L, int idx, const char *k, double dflt) {
  lua_getfield(L, idx, k);
  double v = lua_isnil(L, -1) ? dflt : (double)lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Reads a string option, or the environment variable env, or NULL. */
static const char *str_or_env(lua_State *L, int idx, const char *k, const char *env) {
  lua_getfield(L, idx, k);
  const char *v = lua_tostring(L, -1); /* kept alive by the options table */
  lua_pop(L, 1);
  if (!v && env) {
    v = getenv(env);
    if (v && !*v) v = NULL;
  }
  return v;
}

/* Parses the options table at idx into o (see the file banner). */
void hyp_options_parse(lua_State *L, int idx, int uv_idx, hyp_config *o, int *has_random) {
  idx = lua_absindex(L, idx);
  uv_idx = lua_absindex(L, uv_idx);
  memset(o, 0, sizeof *o);
  if (lua_isnoneornil(L, idx)) {
    lua_newtable(L);
    lua_replace(L, idx);
  }
  if (lua_type(L, idx) != LUA_TTABLE)
    opt_error(L, "options must be a table, got %s", luaL_typename(L, idx));

  /* pass 1: every key known and well typed */
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      opt_error(L, "option names must be strings, got %s", luaL_typename(L, -2));
    const optspec *s = find_spec(lua_tostring(L, -2));
    if (!s) opt_error(L, "unknown option \"%s\"", lua_tostring(L, -2));
    check_type(L, s);
    if (s->type == T_SCOPE) free(read_scope(L));
    if (s->type == T_FUNCTION) keep_value(L, uv_idx, s->name);
    if (s->type == T_CACHE) read_cache(L, uv_idx);
    if (s->type == T_STORE) read_store(L, uv_idx);
    lua_pop(L, 1);
  }
  int both = hyp_getfield(L, idx, "store") != LUA_TNIL;
  both = hyp_getfield(L, idx, "token_cache") != LUA_TNIL && both;
  lua_pop(L, 2);
  if (both) opt_error(L, "options \"store\" and \"token_cache\" cannot both be given: the store keeps the token");

  /* pass 2: values, defaults and environment fallbacks */
  /* credentials come as a pair: both from the options, or both from the
   * environment — never one tenant's id with another one's secret */
  const char *id = str_or_env(L, idx, "client_id", NULL);
  const char *secret = str_or_env(L, idx, "client_secret", NULL);
  if (id && !secret) opt_error(L, "client_secret is missing (client_id was passed: pass client_secret too)");
  if (secret && !id) opt_error(L, "client_id is missing (client_secret was passed: pass client_id too)");
  if (!id) {
    id = str_or_env(L, idx, "client_id", "HYPATOS_CLIENT_ID");
    secret = str_or_env(L, idx, "client_secret", "HYPATOS_CLIENT_SECRET");
    if (!id) opt_error(L, "client_id is missing (pass client_id or set HYPATOS_CLIENT_ID)");
    if (!secret)
      opt_error(L, "client_secret is missing (pass client_secret or set HYPATOS_CLIENT_SECRET)");
  }
  if (strpbrk(id, "\r\n") || strpbrk(secret, "\r\n"))
    opt_error(L, "client credentials must not contain CR or LF");

  const char *region = str_or_env(L, idx, "region", NULL);
  if (region && strcmp(region, "eu") != 0 && strcmp(region, "us") != 0)
    opt_error(L, "option \"region\" must be \"eu\" or \"us\", got \"%s\"", region);
  /* precedence: base_url option > region option > HYPATOS_BASE_URL > "eu" */
  const char *base = str_or_env(L, idx, "base_url", region ? NULL : "HYPATOS_BASE_URL");
  if (!base) base = (region && strcmp(region, "us") == 0) ? US_URL : EU_URL;

  o->client_id = dup_or_raise(L, id);
  o->client_secret = dup_or_raise(L, secret);
  o->base_url = read_url(L, "base_url", base);
  const char *tok = str_or_env(L, idx, "token_url", NULL);
  if (tok) {
    o->token_url = read_url(L, "token_url", tok);
  } else {
    size_t n = strlen(o->base_url) + sizeof "/auth/token";
    o->token_url = malloc(n);
    if (!o->token_url) luaL_error(L, "hypatos.new: out of memory");
    snprintf(o->token_url, n, "%s/auth/token", o->base_url);
  }
  if (hyp_getfield(L, idx, "scope") != LUA_TNIL) o->scope = read_scope(L);
  lua_pop(L, 1);

  o->timeout = num_or(L, idx, "timeout", 60);
  o->connect_timeout = num_or(L, idx, "connect_timeout", 10);
  o->token_timeout = num_or(L, idx, "token_timeout", 30);
  o->deadline = num_or(L, idx, "deadline", 0);
  o->max_retries = (int)num_or(L, idx, "max_retries", 4);
  o->backoff_base = num_or(L, idx, "backoff_base", 0.5);
  o->backoff_cap = num_or(L, idx, "backoff_cap", 30);
  o->max_wait = num_or(L, idx, "max_wait", 60);
  o->max_body_size = (size_t)num_or(L, idx, "max_body_size", MAX_BODY_DEFAULT);
  lua_getfield(L, idx, "throttle");
  o->throttle = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
  lua_pop(L, 1);

  const char *ca = str_or_env(L, idx, "ca_file", NULL);
  if (ca && access(ca, R_OK) != 0)
    opt_error(L, "option \"ca_file\" cannot be read: \"%s\"", ca);
  o->ca_file = dup_or_raise(L, ca);
  const char *proxy = str_or_env(L, idx, "proxy", NULL);
  if (proxy && hyp_has_userinfo(proxy)) opt_error(L, "option \"proxy\" must not contain user info");
  o->proxy = dup_or_raise(L, proxy);

  const char *ua = str_or_env(L, idx, "user_agent", NULL);
  char buf[512], curl[48];
  snprintf(curl, sizeof curl, "libcurl/%s", hyp_curl_version());
  snprintf(buf, sizeof buf, "%s%shypatos-lua/%s (%s; %s)", ua ? ua : "", ua ? " " : "",
           HYP_VERSION, LUA_VERSION, curl);
  o->user_agent = dup_or_raise(L, buf);

  lua_getfield(L, uv_idx, ".store_acquire");
  o->has_store = !lua_isnil(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, uv_idx, ".token_cache_get");
  o->has_cache = !lua_isnil(L, -1);
  lua_getfield(L, uv_idx, ".token_cache_release");
  o->has_cache_release = !lua_isnil(L, -1);
  lua_getfield(L, uv_idx, ".on_request");
  o->has_on_request = !lua_isnil(L, -1);
  lua_getfield(L, uv_idx, ".on_response");
  o->has_on_response = !lua_isnil(L, -1);
  lua_getfield(L, uv_idx, ".random");
  *has_random = !lua_isnil(L, -1);
  lua_pop(L, 5);
}
