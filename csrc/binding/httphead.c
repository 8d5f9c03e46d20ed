/*
 * binding/httphead.c — core.http_head: the status line and header fields of
 * an HTTP/1.x answer read in one C pass, for the nginx cosocket transport
 * (lua/hypatos/cosocket.lua), which used to read them line by line with Lua
 * patterns (most of its CPU per call inside nginx, issue 19).
 *
 *   local status, headers, version, next, used = core.http_head(buf, pos, used, max)
 *
 * reads the answer that starts at byte pos of buf, skipping interim 1xx
 * answers (not 101). The rules are those of the line reader it stands in
 * for, which remains the path for answers whose head is not in buf yet:
 *   - a line ends at "\n"; every "\r" in it is dropped;
 *   - each line adds its length (without "\r") + 2 to used; over max fails
 *     with "headers too large" (checked as each line is read, before it is
 *     looked at);
 *   - the status line starts "HTTP/d.d ddd", else "malformed status line";
 *   - a field line is name ":" [ \t]* value [ \t]*, the name one or more
 *     bytes that are neither ":" nor white space (isspace of the C locale),
 *     else "malformed header line"; a value holding a NUL byte fails with
 *     "NUL byte in header";
 *   - names are lowered (ASCII); a repeated field's values are joined with
 *     ", " in the order they came (linear in the head's size);
 *   - the empty line ends the head.
 * Returns, for a complete answer head: status, headers ({name = value}),
 * version ("1.1"), the position after the head and used; for a failure: nil
 * and the message; when buf ends inside a head: false, the position where
 * that head starts and used before it (the caller reads on from there with
 * its line reader: every line before the cut was well-formed).
 */
#include "binding.h"

#include <string.h>

/* One field line of a head: offsets into the scratch copy. */
typedef struct field {
  size_t name, nlen, value, vlen;
  long next, tail, first; /* repeated names: the chain of the same name */
} field;

/* White space as isspace() in the C locale ("\n" and "\r" never reach it). */
static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f'; }

/* A growable scratch area: a stack buffer first, then userdata left on the
 * Lua stack (collected with the call's garbage, also when a push raises). */
typedef struct scratch {
  char *data;
  size_t len, cap;
} scratch;

static void scratch_reserve(lua_State *L, scratch *s, size_t more) {
  if (s->len + more <= s->cap) return;
  size_t cap = s->cap * 2;
  while (cap < s->len + more) cap *= 2;
  char *p = HYP_NEWUSERDATA(L, cap);
  memcpy(p, s->data, s->len);
  s->data = p;
  s->cap = cap;
}

/* The fields of one head: a stack array first, then userdata as above. */
typedef struct fields {
  field *v;
  size_t n, cap;
} fields;

static void fields_add(lua_State *L, fields *f, const field *x) {
  if (f->n == f->cap) {
    field *p = HYP_NEWUSERDATA(L, f->cap * 2 * sizeof *p);
    memcpy(p, f->v, f->n * sizeof *p);
    f->v = p;
    f->cap *= 2;
  }
  f->v[f->n++] = *x;
}

/* Pushes {name = value} for the fields of a head (names lowered in sc). */
static void push_headers(lua_State *L, const scratch *sc, fields *f) {
  lua_createtable(L, 0, f->n < 64 ? (int)f->n : 64);
  int t = lua_gettop(L);
  size_t i;
  for (i = 0; i < f->n; i++) { /* the common case: no name twice */
    const field *x = &f->v[i];
    lua_pushlstring(L, sc->data + x->name, x->nlen);
    lua_pushvalue(L, -1);
    lua_rawget(L, t);
    if (!lua_isnil(L, -1)) {
      lua_pop(L, 2);
      break;
    }
    lua_pop(L, 1);
    lua_pushlstring(L, sc->data + x->value, x->vlen);
    lua_rawset(L, t);
  }
  if (i == f->n) return;
  /* a repeated name: chain the fields of each name (the table maps a name to
   * its first field while this runs), then join each chain once */
  lua_pop(L, 1);
  lua_createtable(L, 0, f->n < 64 ? (int)f->n : 64);
  t = lua_gettop(L);
  for (i = 0; i < f->n; i++) {
    field *x = &f->v[i];
    x->next = -1;
    lua_pushlstring(L, sc->data + x->name, x->nlen);
    lua_pushvalue(L, -1);
    lua_rawget(L, t);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      x->first = x->tail = (long)i;
      lua_pushnumber(L, (lua_Number)i);
      lua_rawset(L, t);
    } else {
      long first = (long)lua_tonumber(L, -1);
      lua_pop(L, 2);
      f->v[f->v[first].tail].next = (long)i;
      f->v[first].tail = (long)i;
      x->first = first;
    }
  }
  for (i = 0; i < f->n; i++) {
    const field *x = &f->v[i];
    if (x->first != (long)i) continue;
    lua_pushlstring(L, sc->data + x->name, x->nlen);
    if (x->next < 0) {
      lua_pushlstring(L, sc->data + x->value, x->vlen);
    } else {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (long j = (long)i; j >= 0; j = f->v[j].next) {
        if (j != (long)i) luaL_addlstring(&b, ", ", 2);
        luaL_addlstring(&b, sc->data + f->v[j].value, f->v[j].vlen);
      }
      luaL_pushresult(&b);
    }
    lua_rawset(L, t);
  }
}

/* Copies the line [p, nl) into sc without its "\r" bytes; returns its offset
 * in sc (its length: sc->len - offset). */
static size_t take_line(lua_State *L, scratch *sc, const char *p, const char *nl) {
  scratch_reserve(L, sc, (size_t)(nl - p));
  size_t at = sc->len;
  char *out = sc->data + sc->len;
  for (; p < nl; p++)
    if (*p != '\r') *out++ = *p;
  sc->len = (size_t)(out - sc->data);
  return at;
}

/* Reads one head at s[*at..n) into sc and f; returns the status, 0 when the
 * head is cut off by the end of s, or -1 with *err set. */
static int read_head(lua_State *L, const char *s, size_t n, size_t *at, double *used, double max, scratch *sc, fields *f,
                     char version[4], const char **err) {
  const char *p = s + *at, *end = s + n;
  int status = 0;
  sc->len = 0;
  f->n = 0;
  for (int first = 1;; first = 0) {
    const char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
    if (!nl) return 0;
    size_t off = take_line(L, sc, p, nl);
    p = nl + 1;
    size_t len = sc->len - off;
    const char *line = sc->data + off;
    *used += (double)len + 2;
    if (*used > max) {
      *err = "headers too large";
      return -1;
    }
    if (first) {
      const char *l = line;
      if (len < 12 || memcmp(l, "HTTP/", 5) != 0 || !(l[5] >= '0' && l[5] <= '9') || l[6] != '.' ||
          !(l[7] >= '0' && l[7] <= '9') || l[8] != ' ' || !(l[9] >= '0' && l[9] <= '9') ||
          !(l[10] >= '0' && l[10] <= '9') || !(l[11] >= '0' && l[11] <= '9')) {
        *err = "malformed status line";
        return -1;
      }
      version[0] = l[5], version[1] = '.', version[2] = l[7], version[3] = '\0';
      status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
      sc->len = off; /* the status line is not kept */
      continue;
    }
    if (len == 0) break;
    size_t k = 0;
    while (k < len && line[k] != ':' && !is_space((unsigned char)line[k])) k++;
    if (k == 0 || k == len || line[k] != ':') {
      *err = "malformed header line";
      return -1;
    }
    size_t v = k + 1, e = len;
    while (v < e && (line[v] == ' ' || line[v] == '\t')) v++;
    while (e > v && (line[e - 1] == ' ' || line[e - 1] == '\t')) e--;
    if (memchr(line + v, '\0', e - v)) {
      *err = "NUL byte in header";
      return -1;
    }
    char *name = sc->data + off;
    for (size_t i = 0; i < k; i++)
      if (name[i] >= 'A' && name[i] <= 'Z') name[i] = (char)(name[i] - 'A' + 'a');
    field x = {off, k, off + v, e - v, -1, 0, 0};
    fields_add(L, f, &x);
  }
  *at = (size_t)(p - s);
  return status;
}

/** core.http_head(buf, pos, used, max) → status, headers, version, next, used
 * | nil, message | false, head_start, used. See the file banner. */
static int l_http_head(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Number pos = luaL_checknumber(L, 2);
  double used = (double)luaL_checknumber(L, 3), max = (double)luaL_checknumber(L, 4);
  if (!(pos >= 1 && pos <= (lua_Number)n + 1)) return luaL_argerror(L, 2, "out of range");
  size_t at = (size_t)pos - 1;
  char buf[4096];
  field fbuf[32];
  scratch sc = {buf, 0, sizeof buf};
  fields f = {fbuf, 0, sizeof fbuf / sizeof *fbuf};
  char version[4];
  const char *err = NULL;
  int nret;
  for (;;) {
    size_t start = at;
    double used0 = used;
    int status = read_head(L, s, n, &at, &used, max, &sc, &f, version, &err);
    if (status < 0) {
      lua_pushnil(L);
      lua_pushstring(L, err);
      nret = 2;
      break;
    }
    if (status == 0) {
      lua_pushboolean(L, 0);
      lua_pushnumber(L, (lua_Number)start + 1);
      lua_pushnumber(L, used0);
      nret = 3;
      break;
    }
    if (status >= 200 || status == 101) {
      lua_pushinteger(L, status);
      push_headers(L, &sc, &f);
      lua_pushstring(L, version);
      lua_pushnumber(L, (lua_Number)at + 1);
      lua_pushnumber(L, used);
      nret = 5;
      break;
    }
    /* an interim 1xx answer: the real one follows (its bytes still count) */
  }
  return nret;
}

/* See binding.h. */
int hyp_httphead_open(lua_State *L) {
  lua_pushcfunction(L, l_http_head);
  lua_setfield(L, -2, "http_head");
  return 0;
}
