/*
 * binding/json.c — JSON in and out of Lua values.
 *
 * Decoding goes through lua-cjson (a private cjson.safe instance), then one
 * pass fixes what Debian's cjson 2.1.0 gets wrong for this API: integral
 * numbers become Lua integers on 5.3+ (so `totalCount` prints as 3, not 3.0)
 * and empty JSON arrays keep an array mark (hypatos.array metatable) so they
 * are sent back as [] and not {}.
 *
 * Encoding is in json_encode.c. This file also holds the module functions
 * json_encode, json_decode and array.
 */
#include "binding.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char DECODE_KEY = 'd';     /* registry key: cjson instance decode */
static char EMPTY_MARK[48];             /* per-process sentinel string for [] */

/* ------------------------------------------------------------- decoding */

static int json_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* One pass over the text, jumping over strings with memchr: notes whether it
 * has an empty array ("[" whitespace* "]") and numbers outside strings. */
static void scan_json(const char *s, size_t n, int *empty, int *numbers) {
  const char *p = s, *end = s + n;
  *empty = *numbers = 0;
  while (p < end) {
    char c = *p;
    if (c == '"') {
      p++;
      for (;;) { /* to the closing quote: one not preceded by an odd run of backslashes */
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q) return; /* unterminated: cjson reports it */
        const char *b = q;
        while (b > p && b[-1] == '\\') b--;
        p = q + 1;
        if (((q - b) & 1) == 0) break;
      }
      continue;
    }
    if (c == '[') {
      const char *q = p + 1;
      while (q < end && json_ws(*q)) q++;
      if (q < end && *q == ']') *empty = 1;
    } else if ((c >= '0' && c <= '9') || c == '-') {
      *numbers = 1;
    }
    p++;
  }
}

/* Copies s into b with each empty array replaced by [EMPTY_MARK]. */
static int mark_empty_arrays(hyp_buf *b, const char *s, size_t n) {
  int in_str = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (in_str) {
      if (c == '\\' && i + 1 < n) {
        if (hyp_buf_add(b, s + i, 2)) return -1;
        i++;
        continue;
      }
      if (c == '"') in_str = 0;
    } else if (c == '"') {
      in_str = 1;
    } else if (c == '[') {
      size_t j = i + 1;
      while (j < n && json_ws(s[j])) j++;
      if (j < n && s[j] == ']') {
        if (hyp_buf_addf(b, "[\"%s\"]", EMPTY_MARK)) return -1;
        i = j;
        continue;
      }
    }
    if (hyp_buf_addc(b, c)) return -1;
  }
  return 0;
}

/* Turns the table at idx back into an empty array if it is [EMPTY_MARK]. */
static void unmark(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE || lua_rawlen(L, idx) != 1) return;
  lua_rawgeti(L, idx, 1);
  int is_mark = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), EMPTY_MARK) == 0;
  lua_pop(L, 1);
  if (!is_mark) return;
  lua_pushnil(L);
  lua_rawseti(L, idx, 1);
  luaL_getmetatable(L, HYP_ARRAY_MT);
  lua_setmetatable(L, idx);
}

/* Walks a decoded value: integral floats → integers (5.3+), marked
 * one-element arrays → empty arrays with the array metatable. */
static void fix_value(lua_State *L, int idx, int marks, int depth) {
  if (depth > 1000 || lua_type(L, idx) != LUA_TTABLE) return;
  luaL_checkstack(L, 6, "json");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int t = lua_type(L, -1);
#if LUA_VERSION_NUM >= 503
    if (t == LUA_TNUMBER && !lua_isinteger(L, -1)) {
      lua_Number d = lua_tonumber(L, -1);
      if (d == floor(d) && fabs(d) < 9007199254740992.0) {
        lua_pushvalue(L, -2);
        lua_pushinteger(L, (lua_Integer)d);
        lua_rawset(L, idx);
      }
    } else
#endif
    if (t == LUA_TTABLE) {
      int child = lua_gettop(L);
      if (marks) unmark(L, child);
      fix_value(L, child, marks, depth + 1);
    }
    lua_pop(L, 1);
  }
}

/* Decodes s; pushes the value and returns 1, or pushes a message, returns 0. */
int hyp_json_decode(lua_State *L, const char *s, size_t n) {
  hyp_buf marked = {NULL, 0, 0};
  int marks, numbers;
  scan_json(s, n, &marks, &numbers);
  if (marks) {
    if (mark_empty_arrays(&marked, s, n)) {
      hyp_buf_free(&marked);
      lua_pushliteral(L, "out of memory");
      return 0;
    }
    s = marked.data;
    n = marked.len;
  }
  lua_pushlightuserdata(L, (void *)&DECODE_KEY);
  lua_rawget(L, LUA_REGISTRYINDEX);
  lua_pushlstring(L, s, n);
  hyp_buf_free(&marked);
  lua_call(L, 1, 2);
  if (lua_isnil(L, -2) && !lua_isnil(L, -1)) {
    lua_remove(L, -2);
    return 0;
  }
  lua_pop(L, 1);
  if (marks) unmark(L, lua_gettop(L)); /* a top-level [] */
#if LUA_VERSION_NUM >= 503
  if (marks || numbers) fix_value(L, lua_gettop(L), marks, 0);
#else
  (void)numbers;
  if (marks) fix_value(L, lua_gettop(L), marks, 0);
#endif
  return 1;
}

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

/* Sets up the cjson instance and the array metatable; adds json_encode,
 * json_decode, array and null to the module table on the top. */
int hyp_json_open(lua_State *L) {
  if (!EMPTY_MARK[0])
    snprintf(EMPTY_MARK, sizeof EMPTY_MARK, "hypatos-empty-array-%016llx",
             (unsigned long long)hyp_seed());
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cjson.safe");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "new");
  lua_call(L, 0, 1);
  lua_getfield(L, -1, "decode");
  lua_pushlightuserdata(L, (void *)&DECODE_KEY);
  lua_insert(L, -2);
  lua_rawset(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1); /* instance */
  lua_getfield(L, -1, "null");
  lua_setfield(L, -3, "null");
  lua_pop(L, 1); /* cjson.safe */

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
