/*
 * binding/keys.c — the names the hot path of a call reads and writes (the
 * fields of actions, results and meta, the names of action types), interned
 * once per Lua state and kept in one registry table. lua_setfield and
 * lua_getfield take a C string: strlen, a hash and a walk of the string table
 * on every use, a measurable share of a call under LuaJIT. A name taken from
 * the table is one array read (hyp_pushkey), and lua_rawset / lua_rawget find
 * it by its address.
 */
#include "binding.h"

static const char KEYS_KEY = 'k'; /* registry: the array of interned names */

/* The names, in the order of enum hyp_key (binding.h), from HYP_K_TYPE = 1. */
static const char *const NAMES[HYP_K_COUNT] = {
    NULL,          "type",   "method",         "url",          "header_lines",  "body",
    "body_file",   "body_size", "output",      "timeout",      "connect_timeout", "max_body_size",
    "deadline",    "stream", "fresh",          "token_request", "proxy",        "value",
    "meta",        "error",  "status",         "attempts",     "elapsed",       "headers",
    "header_block", "body_in_file", "send",    "done",         "fail",
    "sleep",       "seconds"};

/* See binding.h. */
int hyp_keys_push(lua_State *L) {
  lua_pushlightuserdata(L, (void *)&KEYS_KEY);
  lua_rawget(L, LUA_REGISTRYINDEX);
  return lua_gettop(L);
}

/* See binding.h. */
void hyp_setk(lua_State *L, int t, int keys, int k) {
  t = lua_absindex(L, t);
  lua_rawgeti(L, keys, k);
  lua_insert(L, -2);
  lua_rawset(L, t);
}

/* See binding.h. */
int hyp_getk(lua_State *L, int idx, int keys, int k) {
  idx = lua_absindex(L, idx);
  lua_rawgeti(L, keys, k);
  lua_rawget(L, idx);
  return lua_type(L, -1);
}

/* Makes the registry's array of names. */
int hyp_keys_open(lua_State *L) {
  lua_pushlightuserdata(L, (void *)&KEYS_KEY);
  lua_createtable(L, HYP_K_COUNT, 0);
  for (int i = 1; i < HYP_K_COUNT; i++) {
    if (!NAMES[i]) return luaL_error(L, "hypatos.core: key %d has no name", i); /* enum and NAMES differ */
    lua_pushstring(L, NAMES[i]);
    lua_rawseti(L, -2, i);
  }
  lua_rawset(L, LUA_REGISTRYINDEX);
  return 0;
}
