/*
 * util.c — small shared helpers: growable buffers, clocks, percent-encoding,
 * base64, a seeded random source and the received-headers list.
 * Nothing here knows about HTTP semantics or the Lua objects of the module.
 */
#define _POSIX_C_SOURCE 200809L
#include "hypatos.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Grows b so that n more bytes (plus a NUL) fit. */
static int buf_reserve(hyp_buf *b, size_t n) {
  if (b->len + n + 1 <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + n + 1) {
    if (cap > SIZE_MAX / 2) return -1;
    cap *= 2;
  }
  char *p = realloc(b->data, cap);
  if (!p) return -1;
  b->data = p;
  b->cap = cap;
  return 0;
}

/* Appends n bytes. */
int hyp_buf_add(hyp_buf *b, const void *p, size_t n) {
  if (buf_reserve(b, n)) return -1;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

/* Appends a C string. */
int hyp_buf_adds(hyp_buf *b, const char *s) { return hyp_buf_add(b, s, strlen(s)); }

/* Appends one byte. */
int hyp_buf_addc(hyp_buf *b, char c) { return hyp_buf_add(b, &c, 1); }

/* Appends printf-style text. */
int hyp_buf_addf(hyp_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || buf_reserve(b, (size_t)n)) return -1;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

/* Empties b, keeping its memory. */
void hyp_buf_reset(hyp_buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

/* Releases b's memory (no wipe: see hyp_buf_wipe for buffers with secrets). */
void hyp_buf_free(hyp_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* Wipes all of b's memory (it held a secret) and releases it. */
void hyp_buf_wipe(hyp_buf *b) {
  if (b->data) hyp_wipe(b->data, b->cap);
  hyp_buf_free(b);
}

/* strdup that accepts NULL. */
char *hyp_strdup(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

/* Overwrites n bytes with zeros in a way the compiler keeps. */
void hyp_wipe(void *p, size_t n) {
  if (!p || !n) return;
  memset(p, 0, n);
  __asm__ __volatile__("" : : "r"(p) : "memory"); /* the memset is not dead */
}

/* Wipes, frees and clears a secret string. */
void hyp_free_secret(char **s) {
  if (*s) {
    hyp_wipe(*s, strlen(*s));
    free(*s);
    *s = NULL;
  }
}

/* Wall-clock time in seconds. Token expiry is shared through caches across
 * processes, so the engine works on the wall clock. */
double hyp_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps for the given number of seconds (fractions allowed). A signal
 * ends the sleep early when stop(ud) says so (NULL: sleep on). Returns 1
 * when stopped early. */
int hyp_sleep_until(double seconds, int (*stop)(void *), void *ud) {
  if (!(seconds > 0)) return 0;
  if (seconds > 1e9) seconds = 1e9; /* about 31 years: no undefined cast to time_t */
  struct timespec ts;
  ts.tv_sec = (time_t)seconds;
  ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    if (stop && stop(ud)) return 1;
  }
  return 0;
}

/* Sleeps for the given number of seconds (fractions allowed). */
void hyp_sleep(double seconds) { hyp_sleep_until(seconds, NULL, NULL); }

/* True when the standalone interpreter (lua, luajit) was sent SIGINT: its
 * handler sets a hook with call, return and count (count 1) masks (lua 5.4
 * adds the line mask), which fires as soon as Lua code runs again. C code
 * that blocks checks this to stop early. */
int hyp_interrupted(lua_State *L) {
  const int want = LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT;
  return lua_gethook(L) != NULL && lua_gethookcount(L) == 1 && (lua_gethookmask(L) & want) == want;
}

static const char HEX[] = "0123456789ABCDEF";

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 3986 percent-encoding of everything but unreserved characters. */
int hyp_pct_encode(hyp_buf *b, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (unreserved(c)) {
      if (hyp_buf_addc(b, (char)c)) return -1;
    } else {
      char e[3] = {'%', HEX[c >> 4], HEX[c & 15]};
      if (hyp_buf_add(b, e, 3)) return -1;
    }
  }
  return 0;
}

/* application/x-www-form-urlencoded, as RFC 6749 §2.3.1 asks for credentials. */
int hyp_form_encode(hyp_buf *b, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == ' ') {
      if (hyp_buf_addc(b, '+')) return -1;
    } else if (unreserved(c) && c != '~') {
      if (hyp_buf_addc(b, (char)c)) return -1;
    } else {
      char e[3] = {'%', HEX[c >> 4], HEX[c & 15]};
      if (hyp_buf_add(b, e, 3)) return -1;
    }
  }
  return 0;
}

/* Standard base64 with padding. */
int hyp_base64(hyp_buf *b, const unsigned char *p, size_t n) {
  static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)p[i] << 16;
    if (i + 1 < n) v |= (unsigned)p[i + 1] << 8;
    if (i + 2 < n) v |= p[i + 2];
    char o[4] = {A[(v >> 18) & 63], A[(v >> 12) & 63], i + 1 < n ? A[(v >> 6) & 63] : '=',
                 i + 2 < n ? A[v & 63] : '='};
    if (hyp_buf_add(b, o, 4)) return -1;
  }
  return 0;
}

/* A seed from /dev/urandom, or from the clock and pid when that fails. */
uint64_t hyp_seed(void) {
  uint64_t s = 0;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (read(fd, &s, sizeof s) != (ssize_t)sizeof s) s = 0;
    close(fd);
  }
  if (!s) s = (uint64_t)(hyp_now() * 1e6) ^ ((uint64_t)getpid() << 32);
  return s;
}

/* splitmix64 → a double in [0, 1). */
double hyp_random(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* Appends a received header, lower-casing its name. A name or value holding
 * a NUL (a hostile server, a driver passing one on) is dropped: stored as is
 * it would shift the "name\0value\0" list and inject headers. Returns 0 (also
 * when dropped) or -1 (ENOMEM). */
int hyp_header_add(hyp_buf *h, const char *name, size_t nlen, const char *value, size_t vlen) {
  if (memchr(name, '\0', nlen) || memchr(value, '\0', vlen)) return 0;
  if (buf_reserve(h, nlen + vlen + 2)) return -1;
  char *p = h->data + h->len;
  for (size_t i = 0; i < nlen; i++) {
    char c = name[i];
    p[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
  }
  p[nlen] = '\0';
  memcpy(p + nlen + 1, value, vlen);
  p[nlen + 1 + vlen] = '\0';
  h->len += nlen + vlen + 2;
  h->data[h->len] = '\0';
  return 0;
}

/* The first value of a received header (name in lower case), or NULL. */
const char *hyp_header_get(const hyp_buf *h, const char *name) {
  const char *p = h->data, *end = h->data + h->len;
  while (p && p < end) {
    const char *v = p + strlen(p) + 1;
    if (v >= end) break;
    if (strcmp(p, name) == 0) return v;
    p = v + strlen(v) + 1;
  }
  return NULL;
}

/* Pushes the headers as a table; repeated names are joined with ", ". The
 * values of a repeated name are gathered in a side table and joined once at
 * the end, so the cost stays linear in the number of lines. */
void hyp_headers_push(lua_State *L, const hyp_buf *h) {
  lua_createtable(L, 0, 12);
  int t = lua_gettop(L), multi = 0; /* multi: stack index of {name = {values}} */
  const char *p = h->data, *end = h->data + h->len;
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
