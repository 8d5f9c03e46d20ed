/*
 * binding/meta.c — the meta table of a successful call:
 *   {status, attempts, elapsed, headers, rate_limit}
 * status, attempts and elapsed are set at once; headers and rate_limit are
 * built on first access (most callers never look, and building them is a
 * measurable share of a call). Until then their source — a snapshot of the
 * rate-limit state and the raw header block, packed in one userdata — waits
 * in the meta's own metatable (__index, __pairs, __name "hypatos.Meta" and
 * the source). A weak-keyed table of sources, the first design, cost LuaJIT
 * about 0.5 µs per call inside nginx: it marks a weak-keyed table's values,
 * so every source outlived its meta by a collection. pairs(meta) shows the
 * lazy fields on Lua 5.2+ (__pairs); on LuaJIT index them first.
 */
#include "binding.h"

#include <string.h>

static const char SOURCE_KEY = 's'; /* a meta's metatable: [&SOURCE_KEY] = its packed source */
static const char PARTS_KEY = 'm';  /* registry: the parts every meta's metatable is made of */

/* The registry array of PARTS_KEY: names and values of a meta's metatable fields. */
enum { P_INDEX = 1, P_INDEX_FN, P_PAIRS, P_PAIRS_FN, P_NAME, P_NAME_VALUE, P_COUNT = P_NAME_VALUE };

/* What the lazy fields are built from. */
typedef struct packed {
  hyp_rate rate;
  double now;
} packed;

/* Pushes meta for a 2xx answer. */
void hyp_meta_push(lua_State *L, const hyp_result *in, const hyp_rate *rate, int attempts,
                   double elapsed, double now) {
  int keys = hyp_keys_push(L);
  lua_createtable(L, 0, 5);
  hyp_pushkey(L, keys, HYP_K_STATUS);
  lua_pushinteger(L, in->status);
  lua_rawset(L, -3);
  hyp_pushkey(L, keys, HYP_K_ATTEMPTS);
  lua_pushinteger(L, attempts);
  lua_rawset(L, -3);
  hyp_pushkey(L, keys, HYP_K_ELAPSED);
  lua_pushnumber(L, elapsed);
  lua_rawset(L, -3);
  lua_remove(L, keys);
  /* a metatable of its own, which holds the source: a weak table keyed by the metas kept
   * every source alive one more collection (LuaJIT marks a weak-keyed table's values) */
  lua_pushlightuserdata(L, (void *)&PARTS_KEY);
  lua_rawget(L, LUA_REGISTRYINDEX);
  int parts = lua_gettop(L);
  lua_createtable(L, 0, 4);
  for (int i = P_INDEX; i < P_COUNT; i += 2) {
    lua_rawgeti(L, parts, i);
    lua_rawgeti(L, parts, i + 1);
    lua_rawset(L, -3);
  }
  lua_pushlightuserdata(L, (void *)&SOURCE_KEY);
  /* a userdata, not a string: no byte-by-byte luaL_Buffer, and nothing for LuaJIT to hash
   * and intern (sources differ in a few bytes, which its sparse hash of long strings
   * does not tell apart) */
  char *src = HYP_NEWUSERDATA(L, sizeof(packed) + in->headers.len);
  packed p;
  memset(&p, 0, sizeof p);
  p.rate = *rate;
  p.now = now;
  memcpy(src, &p, sizeof p);
  if (in->headers.len) memcpy(src + sizeof p, in->headers.data, in->headers.len);
  lua_rawset(L, -3);
  lua_setmetatable(L, parts - 1);
  lua_pop(L, 1); /* parts */
}

/* See binding.h: {limit, remaining, reset, reset_at, window, policy} or nil. */
void hyp_rate_push(lua_State *L, const hyp_rate *r, double now) {
  if (!r->known) {
    lua_pushnil(L);
    return;
  }
  lua_createtable(L, 0, 6);
  if (r->limit >= 0) {
    lua_pushinteger(L, r->limit);
    lua_setfield(L, -2, "limit");
  }
  if (r->remaining >= 0) {
    lua_pushinteger(L, r->remaining);
    lua_setfield(L, -2, "remaining");
  }
  if (r->reset_at > 0) {
    lua_pushnumber(L, r->reset_at > now ? r->reset_at - now : 0);
    lua_setfield(L, -2, "reset");
    lua_pushnumber(L, r->reset_at);
    lua_setfield(L, -2, "reset_at");
  }
  if (r->window > 0) {
    lua_pushnumber(L, r->window);
    lua_setfield(L, -2, "window");
  }
  if (r->policy[0]) {
    lua_pushstring(L, r->policy);
    lua_setfield(L, -2, "policy");
  }
}

/* Builds the lazy field k of meta (index 1) from its source; pushes it or nil. */
static int build(lua_State *L, const char *k) {
  const char *s = NULL;
  if (lua_getmetatable(L, 1)) {
    lua_pushlightuserdata(L, (void *)&SOURCE_KEY);
    lua_rawget(L, -2);
    s = lua_touserdata(L, -1);
  }
  size_t n = s ? lua_rawlen(L, -1) : 0;
  if (!s || n < sizeof(packed)) {
    lua_pushnil(L);
    return 1;
  }
  packed p;
  memcpy(&p, s, sizeof p);
  if (strcmp(k, "headers") == 0) {
    hyp_buf h = {(char *)s + sizeof p, n - sizeof p, n - sizeof p};
    hyp_headers_push(L, &h);
  } else {
    hyp_rate_push(L, &p.rate, p.now);
  }
  lua_pushstring(L, k);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1); /* from now on a plain field */
  return 1;
}

/* __index: headers and rate_limit on first access. */
static int meta_index(lua_State *L) {
  const char *k = lua_tostring(L, 2);
  if (k && (strcmp(k, "headers") == 0 || strcmp(k, "rate_limit") == 0)) return build(L, k);
  return 0;
}

/* __pairs: builds the lazy fields, then iterates as usual. */
static int meta_pairs(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "headers");
  lua_getfield(L, 1, "rate_limit");
  lua_getglobal(L, "next");
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

/* Registers the parts of a meta's metatable: __index, __pairs, __name "hypatos.Meta". */
int hyp_meta_open(lua_State *L) {
  lua_pushlightuserdata(L, (void *)&PARTS_KEY);
  lua_createtable(L, P_COUNT, 0);
  lua_pushliteral(L, "__index");
  lua_rawseti(L, -2, P_INDEX);
  lua_pushcfunction(L, meta_index);
  lua_rawseti(L, -2, P_INDEX_FN);
  lua_pushliteral(L, "__pairs");
  lua_rawseti(L, -2, P_PAIRS);
  lua_pushcfunction(L, meta_pairs);
  lua_rawseti(L, -2, P_PAIRS_FN);
  lua_pushliteral(L, "__name");
  lua_rawseti(L, -2, P_NAME);
  lua_pushliteral(L, "hypatos.Meta");
  lua_rawseti(L, -2, P_NAME_VALUE);
  lua_rawset(L, LUA_REGISTRYINDEX);
  return 0;
}
