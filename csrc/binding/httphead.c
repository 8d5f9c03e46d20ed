/*
 * binding/httphead.c — core.http_head: the status line and header fields of
 * an HTTP/1.x answer read in one C pass, for the nginx cosocket transport
 * (lua/hypatos/http1.lua), which used to read them line by line with Lua
 * patterns (most of its CPU per call inside nginx, issue 19).
 *
 *   local status, block, version, next, used, cl, te, conn = core.http_head(buf, pos, used, max)
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
 * Returns, for a complete answer head: the status; the fields as a header
 * block, "name\0value\0" for each name in the order they first came (what
 * call:step takes as a result's header_block; a name holding a NUL byte is
 * left out, as the engine leaves it out of a headers table), in a
 * hypatos.HeaderBlock userdata (tostring gives the bytes): not a string,
 * which LuaJIT would intern, and answers that differ in a few bytes (Date,
 * a rate-limit counter) collide in its sparse hash of long strings; the
 * version
 * ("1.1"); the position after the head; used; and the values of
 * Content-Length, Transfer-Encoding and Connection (nil when absent), which
 * frame the body. For a failure: nil and the message. When buf ends inside
 * a head: false, the position where that head starts and used before it
 * (the caller reads on from there with its line reader: every line before
 * the cut was well-formed).
 */
#include "binding.h"

#include <string.h>

/* One field line of a head. The name is lowered in the scratch copy (at
 * name); the value is in buf, or in the scratch copy when its line held a CR
 * (in_scratch). */
typedef struct field {
  size_t name, nlen, value, vlen;
  int in_scratch;
  int nul;                /* the name holds a NUL byte (left out of the block) */
  size_t hash;            /* of the lowered name (FNV-1a) */
  long first, next, tail; /* the fields of the same name: a chain from the first */
} field;

/* White space as isspace() in the C locale ("\n" and "\r" never reach it). */
static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f'; }

/* A growable area: a stack buffer first, then userdata left on the Lua stack
 * (collected with the call's garbage, also when a push raises). */
typedef struct area {
  char *data;
  size_t len, cap; /* in bytes */
} area;

static void *area_grow(lua_State *L, area *a, size_t more) {
  if (a->len + more > a->cap) {
    size_t cap = a->cap * 2;
    while (cap < a->len + more) cap *= 2;
    char *p = HYP_NEWUSERDATA(L, cap);
    memcpy(p, a->data, a->len);
    a->data = p;
    a->cap = cap;
  }
  void *at = a->data + a->len;
  a->len += more;
  return at;
}

/* One head being read: the bytes, the scratch copies and the fields. */
typedef struct head {
  const char *s;
  area sc;     /* lowered names, and lines that held a CR */
  area fields; /* field[] */
} head;

#define FIELD(h, i) (((field *)(h)->fields.data)[i])
#define NFIELDS(h) ((h)->fields.len / sizeof(field))

static const char *value_of(const head *h, const field *f) {
  return (f->in_scratch ? h->sc.data : h->s) + f->value;
}

/* Reads the field line [p, e) of h (its CRs already gone when in_scratch:
 * then p, e point into h->sc at base). Returns NULL or the failure. */
static const char *add_field(lua_State *L, head *h, const char *p, const char *e, int in_scratch, size_t base) {
  size_t len = (size_t)(e - p), k = 0;
  while (k < len && p[k] != ':' && !is_space((unsigned char)p[k])) k++;
  if (k == 0 || k == len || p[k] != ':') return "malformed header line";
  size_t v = k + 1, end = len;
  while (v < end && (p[v] == ' ' || p[v] == '\t')) v++;
  while (end > v && (p[end - 1] == ' ' || p[end - 1] == '\t')) end--;
  if (memchr(p + v, '\0', end - v)) return "NUL byte in header";
  size_t value = in_scratch ? base + v : (size_t)(p - h->s) + v;
  char *name = area_grow(L, &h->sc, k); /* may move sc (p stays valid: read before) */
  const char *from = in_scratch ? h->sc.data + base : p;
  size_t x = 2166136261u;
  int nul = 0;
  for (size_t i = 0; i < k; i++) { /* lowered, hashed, NUL noted: one pass */
    char c = from[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    nul |= c == '\0';
    name[i] = c;
    x = (x ^ (unsigned char)c) * 16777619u;
  }
  field *f = area_grow(L, &h->fields, sizeof(field));
  f->name = (size_t)(name - h->sc.data);
  f->nlen = k;
  f->value = value;
  f->vlen = end - v;
  f->in_scratch = in_scratch;
  f->nul = nul;
  f->hash = x;
  return NULL;
}

/* Reads one head at s[*at..n) into h; returns the status, 0 when the head is
 * cut off by the end of s, or -1 with *err set. */
static int read_head(lua_State *L, head *h, size_t n, size_t *at, double *used, double max, char version[4],
                     const char **err) {
  const char *s = h->s, *p = s + *at, *end = s + n;
  int status = 0;
  h->sc.len = 0;
  h->fields.len = 0;
  for (int first = 1;; first = 0) {
    const char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
    if (!nl) return 0;
    const char *line = p, *e = nl;
    p = nl + 1;
    if (e > line && e[-1] == '\r') e--; /* the usual CR */
    const char *cr = memchr(line, '\r', (size_t)(e - line));
    int in_scratch = cr != NULL;
    size_t base = 0;
    if (cr) { /* CRs inside the line: a copy without them */
      size_t before = (size_t)(cr - line);
      char *out = area_grow(L, &h->sc, (size_t)(e - line));
      base = (size_t)(out - h->sc.data);
      memcpy(out, line, before);
      char *o = out + before;
      for (const char *q = cr; q < e; q++)
        if (*q != '\r') *o++ = *q;
      h->sc.len = base + (size_t)(o - out);
      line = h->sc.data + base;
      e = o;
    }
    size_t len = (size_t)(e - line);
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
      continue;
    }
    if (len == 0) break;
    if ((*err = add_field(L, h, line, e, in_scratch, base))) return -1;
  }
  *at = (size_t)(p - s);
  return status;
}

/* Chains the fields of h by name (first, next, tail), in linear time. */
static void chain(lua_State *L, head *h) {
  size_t nf = NFIELDS(h), cap = 16;
  while (cap < 2 * nf) cap *= 2;
  long stack[64], *slot = cap <= 64 ? stack : HYP_NEWUSERDATA(L, cap * sizeof(long));
  for (size_t i = 0; i < cap; i++) slot[i] = -1;
  for (size_t i = 0; i < nf; i++) {
    field *f = &FIELD(h, i);
    const char *name = h->sc.data + f->name;
    f->next = -1;
    for (size_t k = f->hash & (cap - 1);; k = (k + 1) & (cap - 1)) {
      long j = slot[k];
      if (j < 0) {
        slot[k] = (long)i;
        f->first = f->tail = (long)i;
        break;
      }
      field *g = &FIELD(h, j);
      if (g->hash == f->hash && g->nlen == f->nlen && memcmp(h->sc.data + g->name, name, f->nlen) == 0) {
        FIELD(h, g->tail).next = (long)i;
        g->tail = (long)i;
        f->first = j;
        break;
      }
    }
  }
}

/* The framing fields the transport reads, in the order core.http_head returns them. */
static const char *const FRAMING[] = {"content-length", "transfer-encoding", "connection"};
static const size_t FRAMING_LEN[] = {14, 17, 10};

/* Writes the header block of h (see the file banner) into out (growing it:
 * userdata may be pushed), and where the values of the FRAMING fields are in
 * it (offset + 1, 0 when absent; length). */
static void make_block(lua_State *L, head *h, area *out, size_t framing[3][2]) {
  size_t nf = NFIELDS(h), size = 0;
  for (size_t i = 0; i < nf; i++) size += FIELD(h, i).nlen + FIELD(h, i).vlen + 4;
  char *o = area_grow(L, out, size);
  for (size_t i = 0; i < nf; i++) {
    const field *f = &FIELD(h, i);
    const char *name = h->sc.data + f->name;
    if (f->first != (long)i || f->nul) continue;
    memcpy(o, name, f->nlen);
    o += f->nlen;
    *o++ = '\0';
    const char *v0 = o;
    for (long j = (long)i; j >= 0; j = FIELD(h, j).next) {
      const field *g = &FIELD(h, j);
      if (j != (long)i) *o++ = ',', *o++ = ' ';
      memcpy(o, value_of(h, g), g->vlen);
      o += g->vlen;
    }
    for (int k = 0; k < 3; k++)
      if (FRAMING_LEN[k] == f->nlen && memcmp(FRAMING[k], name, f->nlen) == 0) {
        framing[k][0] = (size_t)(v0 - out->data) + 1;
        framing[k][1] = (size_t)(o - v0);
      }
    *o++ = '\0';
  }
  out->len = (size_t)(o - out->data);
}

/** core.http_head(buf, pos, used, max) → status, header_block, version, next,
 * used, content_length, transfer_encoding, connection | nil, message | false,
 * head_start, used. See the file banner. */
static int l_http_head(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Number pos = luaL_checknumber(L, 2);
  double used = (double)luaL_checknumber(L, 3), max = (double)luaL_checknumber(L, 4);
  if (!(pos >= 1 && pos <= (lua_Number)n + 1)) return luaL_argerror(L, 2, "out of range");
  size_t at = (size_t)pos - 1;
  char sbuf[1024];
  field fbuf[32];
  head h = {s, {sbuf, 0, sizeof sbuf}, {(char *)fbuf, 0, sizeof fbuf}};
  char version[4];
  const char *err = NULL;
  for (;;) {
    size_t start = at;
    double used0 = used;
    int status = read_head(L, &h, n, &at, &used, max, version, &err);
    if (status < 0) {
      lua_pushnil(L);
      lua_pushstring(L, err);
      return 2;
    }
    if (status == 0) {
      lua_pushboolean(L, 0);
      lua_pushnumber(L, (lua_Number)start + 1);
      lua_pushnumber(L, used0);
      return 3;
    }
    if (status >= 200 || status == 101) {
      chain(L, &h);
      char obuf[1024];
      area out = {obuf, 0, sizeof obuf};
      size_t framing[3][2] = {{0, 0}, {0, 0}, {0, 0}};
      make_block(L, &h, &out, framing);
      lua_pushinteger(L, status);
      char *ud = HYP_NEWUSERDATA(L, out.len);
      memcpy(ud, out.data, out.len);
      luaL_setmetatable(L, HYP_HEADER_BLOCK_MT);
      lua_pushlstring(L, version, 3);
      lua_pushnumber(L, (lua_Number)at + 1);
      lua_pushnumber(L, used);
      for (int k = 0; k < 3; k++) {
        if (framing[k][0])
          lua_pushlstring(L, out.data + framing[k][0] - 1, framing[k][1]);
        else
          lua_pushnil(L);
      }
      return 8;
    }
    /* an interim 1xx answer: the real one follows (its bytes still count) */
  }
}

/* See binding.h. */
int hyp_header_block(lua_State *L, int idx, const char **data, size_t *len) {
  if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, HYP_HEADER_BLOCK_MT);
  int ok = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  if (!ok) return 0;
  *data = lua_touserdata(L, idx);
  *len = lua_rawlen(L, idx);
  return 1;
}

/* tostring(block): its bytes, "name\0value\0"… */
static int block_tostring(lua_State *L) {
  const char *data;
  size_t len;
  if (!hyp_header_block(L, 1, &data, &len)) return luaL_argerror(L, 1, "hypatos.HeaderBlock expected");
  lua_pushlstring(L, data, len);
  return 1;
}

/* See binding.h. */
int hyp_httphead_open(lua_State *L) {
  luaL_newmetatable(L, HYP_HEADER_BLOCK_MT);
  lua_pushcfunction(L, block_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, HYP_HEADER_BLOCK_MT);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_http_head);
  lua_setfield(L, -2, "http_head");
  return 0;
}
