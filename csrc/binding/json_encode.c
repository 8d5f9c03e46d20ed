/*
 * binding/json_encode.c — Lua values to JSON, done here rather than by lua-cjson
 * 2.1.0, which writes at most 14 significant digits (1.2345678901235e+16 for
 * an integer id) and cannot write an empty array:
 *   - integers exactly, floats in the shortest form that reads back to the
 *     same double, NaN/infinity refused;
 *   - strings checked to be UTF-8 and escaped: C0 controls (\n, \r, \t in
 *     short), DEL and the C1 controls U+0080-U+009F as \u00xx, so that a
 *     terminal shown the output never gets a raw control; the rest as it is;
 *   - object keys sorted (stable output);
 *   - a table with the hypatos.array metatable is always an array ([] when
 *     empty); an unmarked empty table is an object ({});
 *   - sparse arrays, mixed keys, functions and cycles refused.
 * Errors name the path of the bad value: "json: … at invoiceLines[0].netAmount".
 */
#include "binding.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct enc {
  lua_State *L;
  hyp_buf *b;
  int depth;
  hyp_buf path;                         /* where we are, for error messages */
} enc;

static void enc_fail(enc *e, const char *what) {
  lua_State *L = e->L;
  lua_pushfstring(L, "json: %s at %s", what, e->path.len ? e->path.data : "top level");
  hyp_buf_free(&e->path);
  lua_error(L);
}

static void enc_mem(enc *e, int rc) {
  if (rc) enc_fail(e, "out of memory");
}

/* Appends s as a JSON string; rejects bytes that are not UTF-8. */
static void enc_string(enc *e, const char *s, size_t n) {
  hyp_buf *b = e->b;
  enc_mem(e, hyp_buf_addc(b, '"'));
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char q[2] = {'\\', (char)c};
      enc_mem(e, hyp_buf_add(b, q, 2));
    } else if (c < 0x20 || c == 0x7f) {
      const char *esc = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
      if (esc)
        enc_mem(e, hyp_buf_adds(b, esc));
      else
        enc_mem(e, hyp_buf_addf(b, "\\u%04x", c));
    } else if (c < 0x80) {
      enc_mem(e, hyp_buf_addc(b, (char)c));
    } else {
      /* validate one UTF-8 sequence and copy it */
      size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
      if (!len || c > 0xf4 || i + len > n) enc_fail(e, "string is not valid UTF-8");
      unsigned cp = c & (0x7f >> len);
      for (size_t k = 1; k < len; k++) {
        unsigned char d = (unsigned char)s[i + k];
        if ((d & 0xc0) != 0x80) enc_fail(e, "string is not valid UTF-8");
        cp = (cp << 6) | (d & 0x3f);
      }
      if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
          (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        enc_fail(e, "string is not valid UTF-8");
      if (cp <= 0x9f) /* a C1 control (C2 80 to C2 9F): escaped like C0, same JSON value */
        enc_mem(e, hyp_buf_addf(b, "\\u%04x", cp));
      else
        enc_mem(e, hyp_buf_add(b, s + i, len));
      i += len - 1;
    }
  }
  enc_mem(e, hyp_buf_addc(b, '"'));
}

/* Appends a number: integers exactly, floats in their shortest exact form. */
static void enc_number(enc *e, int idx) {
  lua_State *L = e->L;
#if LUA_VERSION_NUM >= 503
  if (lua_isinteger(L, idx)) {
    enc_mem(e, hyp_buf_addf(e->b, "%lld", (long long)lua_tointeger(L, idx)));
    return;
  }
#endif
  double d = (double)lua_tonumber(L, idx);
  if (isnan(d) || isinf(d)) enc_fail(e, "NaN or infinity cannot be written as JSON");
  if (d == floor(d) && fabs(d) < 9007199254740992.0) {
    enc_mem(e, hyp_buf_addf(e->b, "%.0f", d));
    return;
  }
  char tmp[32];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, d);
    if (strtod(tmp, NULL) == d) break;
  }
  enc_mem(e, hyp_buf_adds(e->b, tmp));
}

static void enc_value(enc *e, int idx);

/* Pushes path segment onto e->path; returns the old length to restore. */
static size_t path_push_key(enc *e, const char *k) {
  size_t old = e->path.len;
  enc_mem(e, e->path.len ? hyp_buf_addf(&e->path, ".%s", k) : hyp_buf_adds(&e->path, k));
  return old;
}

static size_t path_push_index(enc *e, lua_Integer i) {
  size_t old = e->path.len;
  enc_mem(e, hyp_buf_addf(&e->path, "[%lld]", (long long)i));
  return old;
}

static void path_pop(enc *e, size_t old) {
  e->path.len = old;
  if (e->path.data) e->path.data[old] = '\0';
}

/* Classifies a table: returns its array length, or -1 for an object.
 * Raises for mixed or sparse tables. */
static lua_Integer table_shape(enc *e, int idx, size_t *nkeys) {
  lua_State *L = e->L;
  int marked = 0;
  if (lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, HYP_ARRAY_MT);
    marked = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  lua_Integer max = 0, count = 0;
  size_t strings = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
      lua_Integer k = lua_tointeger(L, -1);
      if (k > max) max = k;
      count++;
    } else if (lua_type(L, -1) == LUA_TSTRING) {
      strings++;
    } else {
      lua_pop(L, 1);
      enc_fail(e, "table key that is neither a string nor an array index");
    }
  }
  *nkeys = strings;
  if (strings && count) enc_fail(e, "table mixes array items and object keys");
  if (count && max != count) enc_fail(e, "array has holes (use hypatos.null for null items)");
  if (strings && marked) enc_fail(e, "table marked as array has object keys");
  if (count || marked) return count;
  return strings ? -1 : -1; /* an unmarked empty table is an object: {} */
}

static void enc_table(enc *e, int idx) {
  lua_State *L = e->L;
  if (++e->depth > 128) enc_fail(e, "tables nested too deep (a cycle?)");
  luaL_checkstack(L, 8, "json");
  size_t nkeys = 0;
  lua_Integer n = table_shape(e, idx, &nkeys);
  if (n >= 0) {
    enc_mem(e, hyp_buf_addc(e->b, '['));
    for (lua_Integer i = 1; i <= n; i++) {
      if (i > 1) enc_mem(e, hyp_buf_addc(e->b, ','));
      size_t old = path_push_index(e, i - 1);
      lua_rawgeti(L, idx, (int)i);
      enc_value(e, lua_gettop(L));
      lua_pop(L, 1);
      path_pop(e, old);
    }
    enc_mem(e, hyp_buf_addc(e->b, ']'));
  } else {
    /* the keys, sorted, in a table of our own: a finalizer that changes the
     * table meanwhile cannot overflow or dangle anything */
    nkeys = hyp_sorted_keys(L, idx);
    int keys_idx = lua_gettop(L);
    enc_mem(e, hyp_buf_addc(e->b, '{'));
    for (size_t k = 0; k < nkeys; k++) {
      if (k) enc_mem(e, hyp_buf_addc(e->b, ','));
      lua_rawgeti(L, keys_idx, (int)k + 1);
      size_t klen;
      const char *ks = lua_tolstring(L, -1, &klen);
      enc_string(e, ks, klen);
      enc_mem(e, hyp_buf_addc(e->b, ':'));
      size_t old = path_push_key(e, ks);
      lua_rawget(L, idx);
      enc_value(e, lua_gettop(L));
      lua_pop(L, 1);
      path_pop(e, old);
    }
    lua_remove(L, keys_idx);
    enc_mem(e, hyp_buf_addc(e->b, '}'));
  }
  e->depth--;
}

static void enc_value(enc *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    enc_mem(e, hyp_buf_adds(e->b, "null"));
    break;
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) != NULL) enc_fail(e, "userdata cannot be written as JSON");
    enc_mem(e, hyp_buf_adds(e->b, "null")); /* cjson.null / hypatos.null */
    break;
  case LUA_TBOOLEAN:
    enc_mem(e, hyp_buf_adds(e->b, lua_toboolean(L, idx) ? "true" : "false"));
    break;
  case LUA_TNUMBER:
    enc_number(e, idx);
    break;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    enc_string(e, s, n);
    break;
  }
  case LUA_TTABLE:
    enc_table(e, idx);
    break;
  default:
    enc_fail(e, lua_pushfstring(L, "%s cannot be written as JSON", luaL_typename(L, idx)));
  }
}

/* Encodes the value at idx into b (appending). Raises "json: … at <path>". */
void hyp_json_encode(lua_State *L, int idx, hyp_buf *b) {
  enc e = {L, b, 0, {NULL, 0, 0}};
  enc_value(&e, lua_absindex(L, idx));
  hyp_buf_free(&e.path);
}

