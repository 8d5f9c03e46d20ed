/*
 * binding/tables.c — header lists and table keys as Lua values: received
 * headers as {name = value} (repeated names joined in linear time), request
 * header lines for hooks (never Authorization), sorted key arrays safe from
 * finalizers.
 */
#include "binding.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Pushes the headers as a table; repeated names are joined with ", ". The
 * values of a repeated name are gathered in a side table and joined once at
 * the end, so the cost stays linear in the number of lines. */
void hyp_headers_push(lua_State *L, const hyp_buf *h) {
  lua_createtable(L, 0, 12);
  int t = lua_gettop(L), multi = 0; /* multi: stack index of {name = {values}} */
  const char *p = h->data, *end = p ? p + h->len : NULL; /* no NULL + 0 (UB) */
  while (p && p < end) {
    size_t nlen = strlen(p);
    const char *v = p + nlen + 1;
    if (v >= end) break;
    size_t vlen = strlen(v);
    lua_pushlstring(L, p, nlen);
    lua_pushvalue(L, -1);
    lua_rawget(L, t);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_pushlstring(L, v, vlen);
      lua_rawset(L, t);
    } else { /* rare: a repeated name */
      if (!multi) {
        lua_newtable(L);
        lua_insert(L, t + 1);
        multi = t + 1;
      }
      lua_pushvalue(L, -2);
      lua_rawget(L, multi);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_createtable(L, 4, 0);
        lua_pushvalue(L, -2); /* the first value */
        lua_rawseti(L, -2, 1);
        lua_pushvalue(L, -3);
        lua_pushvalue(L, -2);
        lua_rawset(L, multi);
      }
      lua_pushlstring(L, v, vlen);
      lua_rawseti(L, -2, (int)lua_rawlen(L, -2) + 1);
      lua_pop(L, 3);
    }
    p = v + vlen + 1;
  }
  if (!multi) return;
  lua_pushnil(L);
  while (lua_next(L, multi)) {
    luaL_Buffer b;
    int n = (int)lua_rawlen(L, -1);
    lua_pushvalue(L, -2); /* the name, for rawset below */
    lua_insert(L, -2);
    int vals = lua_gettop(L);
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
      if (i > 1) luaL_addlstring(&b, ", ", 2);
      lua_rawgeti(L, vals, i);
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_remove(L, vals);
    lua_rawset(L, t);
  }
  lua_remove(L, multi);
}

/* A string with its length (keys may hold NUL). */
typedef struct hyp_str {
  const char *s;
  size_t len;
} hyp_str;

/* Orders strings bytewise, in full (NUL included), shorter first on a tie. */
static int cmp_keys(const void *a, const void *b) {
  const hyp_str *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->s, y->s, n);
  return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Pushes an array of the string keys of the table at idx, sorted bytewise
 * (keys holding NUL compare in full); other keys are skipped. The keys are
 * collected first into a table of this function's own, so a finalizer that
 * changes the caller's table meanwhile cannot overflow or dangle anything.
 * Returns the number of keys. */
size_t hyp_sorted_keys(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_newtable(L);
  int t = lua_gettop(L);
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      lua_pushvalue(L, -1);
      lua_rawseti(L, t, (int)++n);
    }
  }
  if (n < 2) return n;
  hyp_str *keys = lua_newuserdata(L, n * sizeof *keys); /* strings pinned by t */
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, t, (int)i + 1);
    keys[i].s = lua_tolstring(L, -1, &keys[i].len);
    lua_pop(L, 1);
  }
  qsort(keys, n, sizeof *keys, cmp_keys);
  lua_newtable(L); /* the sorted array; t keeps the strings alive meanwhile */
  for (size_t i = 0; i < n; i++) {
    lua_pushlstring(L, keys[i].s, keys[i].len);
    lua_rawseti(L, -2, (int)i + 1);
  }
  lua_replace(L, t);
  lua_pop(L, 1); /* the userdata */
  return n;
}

/* Pushes "Name: value\0" lines as the text of an HTTP/1.1 head, "Name: value\r\n"
 * each (what the cosocket transport sends). */
void hyp_lines_push_text(lua_State *L, const hyp_buf *lines, int n) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  const char *p = lines->data;
  for (int i = 0; p && i < n; i++) {
    size_t len = strlen(p);
    luaL_addlstring(&b, p, len);
    luaL_addlstring(&b, "\r\n", 2);
    p += len + 1;
  }
  luaL_pushresult(&b);
}

/* Pushes the "Name: value\r\n" lines of the text at idx (hyp_lines_push_text's)
 * as {Name = value}. */
void hyp_text_lines_push(lua_State *L, int idx) {
  size_t len;
  const char *p = lua_tolstring(L, idx, &len), *end = p ? p + len : NULL;
  lua_createtable(L, 0, 8);
  while (p && p < end) {
    const char *eol = memchr(p, '\r', (size_t)(end - p));
    if (!eol) eol = end;
    const char *colon = memchr(p, ':', (size_t)(eol - p));
    if (colon) {
      lua_pushlstring(L, p, (size_t)(colon - p));
      const char *v = colon + 1;
      while (v < eol && *v == ' ') v++;
      lua_pushlstring(L, v, (size_t)(eol - v));
      lua_settable(L, -3);
    }
    p = eol + 2;
  }
}

/* Pushes "Name: value\0" lines as {Name = value}; skip_auth leaves out the
 * Authorization line (for hooks, which must never see it). */
void hyp_lines_push(lua_State *L, const hyp_buf *lines, int n, int skip_auth) {
  lua_createtable(L, 0, n);
  const char *p = lines->data;
  for (int i = 0; p && i < n; i++) {
    const char *colon = strchr(p, ':');
    if (colon && !(skip_auth && strncasecmp(p, "authorization:", 14) == 0)) {
      lua_pushlstring(L, p, (size_t)(colon - p));
      const char *v = colon + 1;
      while (*v == ' ') v++;
      lua_pushstring(L, v);
      lua_settable(L, -3);
    }
    p += strlen(p) + 1;
  }
}
