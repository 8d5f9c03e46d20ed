/*
 * binding/url.c — the URL of a call: the base URL, the path with its {name}
 * placeholders filled from params (every value percent-encoded, so an id can
 * never change the path; empty, "." and ".." values and control characters
 * refused), and the query (keys sorted, arrays as repeated keys).
 * Misuse raises "hypatos.request: …"; bad data returns -1 with a message.
 */
#include "binding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define req_error(L, ...) hyp_misuse((L), "hypatos.request", __VA_ARGS__)

static void oom(lua_State *L, int rc) {
  if (rc) luaL_error(L, "hypatos.request: out of memory");
}

/* Literal path characters allowed as is (RFC 3986 pchar and '/'). */
static int is_pathchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' || (c >= 'A' && c <= 'Z') ||
         (c && strchr("-._~!$&'()*+,;=:@%", c));
}

/* Appends a scalar (string, number, boolean) as text; raises otherwise. */
static void add_scalar(lua_State *L, hyp_buf *b, int idx, const char *what, const char *k) {
  char tmp[64];
  const char *s;
  size_t n;
  switch (lua_type(L, idx)) {
  case LUA_TSTRING: s = lua_tolstring(L, idx, &n); break;
  case LUA_TBOOLEAN:
    s = lua_toboolean(L, idx) ? "true" : "false";
    n = strlen(s);
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      snprintf(tmp, sizeof tmp, "%lld", (long long)lua_tointeger(L, idx));
    else
      snprintf(tmp, sizeof tmp, "%.17g", (double)lua_tonumber(L, idx));
    s = tmp;
    n = strlen(s);
    break;
  default:
    req_error(L, "%s \"%s\" must be a string, number or boolean, got %s", what, k,
              luaL_typename(L, idx));
    return;
  }
  oom(L, hyp_pct_encode(b, s, n));
}

/* Appends "?k=v&k=v2…" for the query table at idx (keys sorted). */
void hyp_url_query(lua_State *L, hyp_buf *url, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      req_error(L, "query keys must be strings, got %s", luaL_typename(L, -1));
  }
  size_t n = hyp_sorted_keys(L, idx); /* keys may hold NUL: encoded as %00, never cut */
  int keys = lua_gettop(L);
  int first = 1;
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, keys, (int)i + 1);
    size_t klen;
    const char *k = lua_tolstring(L, -1, &klen);
    lua_pushvalue(L, -1);
    lua_rawget(L, idx);
    int v = lua_gettop(L);
    size_t count = lua_type(L, v) == LUA_TTABLE ? lua_rawlen(L, v) : 1;
    if (lua_type(L, v) == LUA_TTABLE) {
      /* an array: every item repeats the key; anything else is misuse */
      size_t total = 0;
      lua_pushnil(L);
      while (lua_next(L, v)) {
        lua_pop(L, 1);
        total++;
      }
      if (total != count)
        req_error(L, "query \"%s\" must be a scalar or an array of scalars", k);
    }
    for (size_t j = 1; j <= count; j++) {
      int item = v;
      if (lua_type(L, v) == LUA_TTABLE) {
        lua_rawgeti(L, v, (int)j);
        item = lua_gettop(L);
        if (lua_type(L, item) == LUA_TTABLE)
          req_error(L, "query \"%s\" must be a scalar or an array of scalars", k);
      }
      oom(L, hyp_buf_addc(url, first ? '?' : '&'));
      first = 0;
      oom(L, hyp_pct_encode(url, k, klen));
      oom(L, hyp_buf_addc(url, '='));
      add_scalar(L, url, item, "query", k);
      if (item != v) lua_pop(L, 1);
    }
    lua_pop(L, 2); /* the value, the key */
  }
  lua_pop(L, 1); /* keys */
}

/* Builds base URL + path with {name} placeholders filled from the params
 * table at params, or (args != 0) from the stack values args, args + 1, …
 * in the order of the placeholders. Returns 0, or -1 with msg for bad data
 * (empty or dot-segment values). */
static int fill_path(lua_State *L, hyp_buf *url, const char *path, int params, int args, char *msg,
                     size_t msglen) {
  if (path[0] != '/') req_error(L, "path must start with \"/\", got \"%s\"", path);
  int used = 0;
  for (const char *p = path; *p; p++) {
    if (*p == '{') {
      const char *end = strchr(p, '}');
      if (!end || end == p + 1) req_error(L, "path \"%s\" has an unclosed or empty {}", path);
      char name[64];
      size_t n = (size_t)(end - p - 1);
      if (n >= sizeof name) req_error(L, "path parameter name too long in \"%s\"", path);
      memcpy(name, p + 1, n);
      name[n] = '\0';
      if (args) {
        lua_pushvalue(L, args + used);
      } else {
        if (!params) req_error(L, "path parameter \"%s\" is missing (no params table)", name);
        lua_getfield(L, params, name);
      }
      int t = lua_type(L, -1);
      if (t == LUA_TNIL) req_error(L, "path parameter \"%s\" is missing", name);
      if (t != LUA_TSTRING && !(t == LUA_TNUMBER && lua_isinteger(L, -1)))
        req_error(L, "path parameter \"%s\" must be a string, got %s", name,
                  t == LUA_TNUMBER ? "a non-integer number" : luaL_typename(L, -1));
      size_t vlen;
      const char *v = lua_tolstring(L, -1, &vlen);
      if (vlen == 0 || strcmp(v, ".") == 0 || strcmp(v, "..") == 0) {
        snprintf(msg, msglen, "path parameter \"%s\" must not be %s", name,
                 vlen ? "\".\" or \"..\"" : "empty");
        lua_pop(L, 1);
        return -1;
      }
      for (size_t i = 0; i < vlen; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch < 0x20 || ch == 0x7f) {
          snprintf(msg, msglen, "path parameter \"%s\" contains a control character (CR, LF or NUL)",
                   name);
          lua_pop(L, 1);
          return -1;
        }
      }
      oom(L, hyp_pct_encode(url, v, vlen));
      lua_pop(L, 1);
      used++;
      p = end;
    } else {
      const char *run = p; /* literal characters up to the next placeholder, at once */
      while (*p && *p != '{') {
        if (!is_pathchar((unsigned char)*p))
          req_error(L, "path \"%s\" has a character that must be percent-encoded; "
                       "pass values through params or query", path);
        p++;
      }
      oom(L, hyp_buf_add(url, run, (size_t)(p - run)));
      p--; /* the loop steps onto the '{' or the end */
    }
  }
  if (params) {
    int given = 0;
    lua_pushnil(L);
    while (lua_next(L, params)) {
      lua_pop(L, 1);
      given++;
    }
    if (given != used) req_error(L, "params has names that path \"%s\" does not use", path);
  }
  return 0;
}

/* See binding.h. */
int hyp_url_path(lua_State *L, hyp_buf *url, const char *path, int params, char *msg, size_t msglen) {
  return fill_path(L, url, path, params, 0, msg, msglen);
}

/* See binding.h. */
int hyp_url_path_args(lua_State *L, hyp_buf *url, const char *path, int args, char *msg, size_t msglen) {
  return fill_path(L, url, path, 0, args, msg, msglen);
}

