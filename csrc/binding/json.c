/*
 * binding/json.c — the JSON functions of the module: json_encode, json_decode,
 * array, null, and the hypatos.array metatable. Decoding is json_decode.c (one
 * pass, no lua-cjson), encoding json_encode.c.
 */
#include "binding.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* True for application/json and any +json type. */
int hyp_is_json_type(const char *ct) {
  if (!ct) return 0;
  while (*ct == ' ') ct++;
  size_t n = strcspn(ct, "; ");
  if (n == 16 && strncasecmp(ct, "application/json", 16) == 0) return 1;
  return n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* Runs the encoder for l_encode inside a protected call. */
static int encode_protected(lua_State *L) {
  hyp_buf *b = lua_touserdata(L, 2);
  hyp_json_encode(L, 1, b);
  return 0;
}

/** core.json_encode(value) → string: exact integers, the shortest float that
 * reads back the same, sorted keys, hypatos.null as null, core.array() tables as
 * arrays. Raises "json: … at <path>" on values JSON cannot hold (NaN, functions,
 * invalid UTF-8, sparse arrays). */
static int l_encode(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  hyp_buf b = {NULL, 0, 0};
  lua_pushcfunction(L, encode_protected);
  lua_pushvalue(L, 1);
  lua_pushlightuserdata(L, &b);
  if (lua_pcall(L, 2, 0, 0) != 0) {
    hyp_buf_free(&b);
    return lua_error(L);
  }
  lua_pushlstring(L, b.data ? b.data : "", b.len);
  hyp_buf_free(&b);
  return 1;
}

/** core.json_decode(text) → value | nil, message: integers stay integers, null
 * is hypatos.null, an empty [] comes back marked as an array (sent back as []). */
static int l_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  if (hyp_json_decode(L, s, n)) return 1;
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

/** core.array([t]) → t (or a new table) marked as a JSON array: encoded as []
 * even when empty. */
static int l_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) lua_newtable(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_getmetatable(L, HYP_ARRAY_MT);
  lua_setmetatable(L, 1);
  return 1;
}

/* Sets up the array metatable; adds json_encode, json_decode, array and null
 * to the module table on the top. */
int hyp_json_open(lua_State *L) {
  lua_pushlightuserdata(L, NULL); /* null: the NULL light userdata, as cjson.null */
  lua_setfield(L, -2, "null");

  luaL_newmetatable(L, HYP_ARRAY_MT);
  lua_pushliteral(L, "array");
  lua_setfield(L, -2, "__jsontype");
  lua_setfield(L, -2, "array_mt");

  lua_pushcfunction(L, l_encode);
  lua_setfield(L, -2, "json_encode");
  lua_pushcfunction(L, l_decode);
  lua_setfield(L, -2, "json_decode");
  lua_pushcfunction(L, l_array);
  lua_setfield(L, -2, "array");
  return 0;
}
