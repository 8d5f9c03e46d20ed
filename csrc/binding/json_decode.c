/*
 * binding/json_decode.c — JSON text straight to Lua values, in one pass.
 *
 * A recursive-descent reader of RFC 8259 JSON that builds the Lua value as it
 * goes: objects and arrays as tables (an empty array gets the hypatos.array
 * metatable, so it is written back as []), strings pushed from the text
 * itself when they hold no escape (else unescaped through a luaL_Buffer:
 * \uXXXX and surrogate pairs to UTF-8; a lone surrogate is refused), numbers
 * as Lua integers when they are integers that fit (5.3+: exact to 2^63) or
 * integral doubles below 2^53, else as the nearest double (exactly in one
 * operation when the digits fit in 53 bits and the power of ten is within
 * ±22, else strtod, whatever the locale's decimal point), true/false, and null as hypatos.null (the NULL
 * light userdata, which cjson.null is too). Bytes inside strings are taken as
 * they are, control characters but NUL too (no UTF-8 check, as before with
 * cjson).
 *
 * Refused, with lua-cjson's messages ("Expected value but found invalid token
 * at character 7"): anything that is not JSON — also the numbers cjson 2.1.0
 * let through (NaN, Infinity, hex, leading zeros, "1.") —, nesting deeper
 * than 1000, trailing text.
 */
#include "binding.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 1000

typedef struct dec {
  lua_State *L;
  const char *start, *p, *end;
  int depth;
  int array_mt;            /* stack index of the hypatos.array metatable */
  char point;              /* the locale's decimal point, once a number needed strtod (0: not yet) */
  char msg[160];           /* the error, once set */
} dec;

/* Sets the error (the first one wins); returns -1. */
static int bad(dec *d, const char *expected, const char *found, const char *at) {
  if (!d->msg[0])
    snprintf(d->msg, sizeof d->msg, "Expected %s but found %s at character %d", expected, found,
             (int)(at - d->start) + 1);
  return -1;
}

static void skip_ws(dec *d) {
  const char *p = d->p, *end = d->end;
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
  d->p = p;
}

/* The name cjson gives the token at p, for messages. */
static const char *token_name(const dec *d, const char *p) {
  if (p >= d->end) return "T_END";
  switch (*p) {
  case '{': return "T_OBJ_BEGIN";
  case '}': return "T_OBJ_END";
  case '[': return "T_ARR_BEGIN";
  case ']': return "T_ARR_END";
  case ':': return "T_COLON";
  case ',': return "T_COMMA";
  case '"': return "T_STRING";
  case 't': case 'f': return "T_BOOLEAN";
  case 'n': return "T_NULL";
  default: return (*p == '-' || (*p >= '0' && *p <= '9')) ? "T_NUMBER" : "invalid token";
  }
}

static int value(dec *d);

/* Four hex digits at p → their value, or -1. */
static long hex4(const char *p) {
  long v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

/* Adds code point cp as UTF-8 to b. */
static void add_utf8(luaL_Buffer *b, unsigned long cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) {
    u[0] = (char)cp, n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
  } else {
    u[0] = (char)(0xF0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
  }
  luaL_addlstring(b, u, n);
}

/* The string at d->p (its opening quote): pushes it. Without an escape it is
 * pushed from the text as it is; with one, unescaped into a luaL_Buffer. */
static int string(dec *d) {
  const char *at = d->p, *p = d->p + 1, *end = d->end;
  const char *q = memchr(p, '"', (size_t)(end - p)); /* memchr: vectorised in libc */
  if (q && !memchr(p, '\\', (size_t)(q - p)) && !memchr(p, '\0', (size_t)(q - p))) {
    lua_pushlstring(d->L, p, (size_t)(q - p)); /* the common case: nothing to unescape */
    d->p = q + 1;
    return 0;
  }
  q = p;
  while (q < end && *q != '"' && *q != '\\' && *q) q++;
  luaL_Buffer b;
  luaL_buffinit(d->L, &b);
  for (;;) {
    luaL_addlstring(&b, p, (size_t)(q - p));
    if (q >= end) return bad(d, "value", "unexpected end of string", at);
    if (!*q) return bad(d, "value", "unexpected end of string", q); /* a NUL: not JSON (cjson stops) */
    if (*q == '"') break;
    /* a backslash */
    if (q + 1 >= end) return bad(d, "value", "unexpected end of string", at);
    char c = q[1];
    const char *rep = c == '"' ? "\"" : c == '\\' ? "\\" : c == '/' ? "/" : c == 'b' ? "\b" : c == 'f' ? "\f"
                    : c == 'n' ? "\n" : c == 'r' ? "\r" : c == 't' ? "\t" : NULL;
    if (rep) {
      luaL_addchar(&b, *rep);
      p = q + 2;
    } else if (c == 'u') {
      long cp = q + 6 <= end ? hex4(q + 2) : -1;
      p = q + 6;
      if (cp >= 0xD800 && cp <= 0xDBFF) { /* a high surrogate: its low one must follow */
        long lo = p + 6 <= end && p[0] == '\\' && p[1] == 'u' ? hex4(p + 2) : -1;
        if (lo < 0xDC00 || lo > 0xDFFF) return bad(d, "value", "invalid unicode escape code", q);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
      } else if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) {
        return bad(d, "value", "invalid unicode escape code", q);
      }
      add_utf8(&b, (unsigned long)cp);
    } else {
      return bad(d, "value", "invalid escape code", q);
    }
    q = p;
    while (q < end && *q != '"' && *q != '\\' && *q) q++;
  }
  luaL_pushresult(&b);
  d->p = q + 1;
  return 0;
}

/* Exact powers of ten as doubles (10^22 is the last one a double holds exactly). */
static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The decimal number at at..end (already checked against the grammar) as
 * the nearest double: exactly in one operation when its significant digits
 * fit in 53 bits and its power of ten is within ±22 (both operands exact,
 * one rounding: Clinger's fast path, which covers the API's amounts and
 * confidences), else by strtod on a copy with the locale's decimal point. */
static double read_double(dec *d, const char *at, const char *end) {
  const char *p = at;
  int neg = *p == '-';
  if (neg) p++;
  uint64_t m = 0;
  int sig = 0, scale = 0, exact = 1;
  for (; p < end && *p >= '0' && *p <= '9'; p++) {
    if (m == 0 && *p == '0') continue; /* leading zeros */
    if (++sig > 15) exact = 0;
    m = m * 10 + (uint64_t)(*p - '0');
  }
  if (p < end && *p == '.') {
    for (p++; p < end && *p >= '0' && *p <= '9'; p++) {
      scale--;
      if (m == 0 && *p == '0') continue;
      if (++sig > 15) exact = 0;
      m = m * 10 + (uint64_t)(*p - '0');
    }
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    int eneg = *p == '-';
    if (*p == '+' || *p == '-') p++;
    long e = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
      if (e > 100000) exact = 0; /* far outside: strtod decides (0 or HUGE_VAL) */
      else e = e * 10 + (*p - '0');
    }
    scale += (int)(eneg ? -e : e);
  }
  if (exact && m == 0) return neg ? -0.0 : 0.0;
  if (exact && scale >= -22 && scale <= 22) {
    double v = scale >= 0 ? (double)m * POW10[scale] : (double)m / POW10[-scale];
    return neg ? -v : v;
  }
  /* strtod reads the locale's decimal point: copy the number with it */
  char tmp[64];
  size_t n = (size_t)(end - at);
  char *s = n < sizeof tmp ? tmp : malloc(n + 1);
  if (!s) return NAN;
  memcpy(s, at, n);
  s[n] = '\0';
  if (!d->point) {
    const char *point = localeconv()->decimal_point;
    d->point = point && point[0] && !point[1] ? point[0] : '.';
  }
  if (d->point != '.') {
    char *dot = strchr(s, '.');
    if (dot) *dot = d->point;
  }
  double v = strtod(s, NULL);
  if (s != tmp) free(s);
  return v;
}

/* The number at d->p (RFC 8259's grammar): pushes it. */
static int number(dec *d) {
  const char *at = d->p, *p = d->p, *end = d->end;
  int neg = 0, frac = 0;
  if (p < end && *p == '-') neg = 1, p++;
  if (p >= end || *p < '0' || *p > '9') return bad(d, "value", "invalid number", at);
  const char *digits = p;
  if (*p == '0') {
    p++;
  } else {
    while (p < end && *p >= '0' && *p <= '9') p++;
  }
  size_t ndigits = (size_t)(p - digits);
  if (p < end && *p == '.') {
    p++;
    if (p >= end || *p < '0' || *p > '9') return bad(d, "value", "invalid number", at);
    while (p < end && *p >= '0' && *p <= '9') p++;
    frac = 1;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (p >= end || *p < '0' || *p > '9') return bad(d, "value", "invalid number", at);
    while (p < end && *p >= '0' && *p <= '9') p++;
    frac = 1;
  }
  if (p < end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'x' || *p == 'X'))
    return bad(d, "value", "invalid number", at); /* a leading zero, "1.2.3", "0x10" */
  d->p = p;
  if (!frac && ndigits <= 19 && !(neg && ndigits == 1 && *digits == '0')) { /* "-0" keeps its sign */
    uint64_t u = 0;
    for (const char *q = digits; q < digits + ndigits; q++) u = u * 10 + (uint64_t)(*q - '0');
#if LUA_VERSION_NUM >= 503
    if (u <= (neg ? 9223372036854775808ULL : 9223372036854775807ULL)) {
      lua_pushinteger(d->L, neg ? (lua_Integer)(0 - u) : (lua_Integer)u);
      return 0;
    }
#else
    if (ndigits <= 15) { /* exact as a double: the only number type */
      lua_pushnumber(d->L, neg ? -(lua_Number)u : (lua_Number)u);
      return 0;
    }
#endif
  }
  double v = read_double(d, at, p);
  if (isnan(v)) return bad(d, "value", "a number too long to read", at);
#if LUA_VERSION_NUM >= 503
  if (v == floor(v) && fabs(v) < 9007199254740992.0 && !(v == 0 && signbit(v))) {
    lua_pushinteger(d->L, (lua_Integer)v); /* 1e2, 3.0: integral, as before */
    return 0;
  }
#endif
  lua_pushnumber(d->L, (lua_Number)v);
  return 0;
}

/* The literal word at d->p (true, false, null). */
static int literal(dec *d) {
  const char *p = d->p;
  size_t left = (size_t)(d->end - p);
  if (left >= 4 && memcmp(p, "true", 4) == 0) {
    lua_pushboolean(d->L, 1);
    d->p += 4;
  } else if (left >= 5 && memcmp(p, "false", 5) == 0) {
    lua_pushboolean(d->L, 0);
    d->p += 5;
  } else if (left >= 4 && memcmp(p, "null", 4) == 0) {
    lua_pushlightuserdata(d->L, NULL); /* hypatos.null (= cjson.null) */
    d->p += 4;
  } else {
    return bad(d, "value", "invalid token", p);
  }
  return 0;
}

/* Enters a nested object or array. */
static int nest(dec *d) {
  if (++d->depth > MAX_DEPTH) {
    if (!d->msg[0])
      snprintf(d->msg, sizeof d->msg, "Found too many nested data structures (%d) at character %d", d->depth,
               (int)(d->p - d->start) + 1);
    return -1;
  }
  luaL_checkstack(d->L, 4, "json: nesting");
  return 0;
}

/* The array at d->p ('['): pushes a table. */
static int array(dec *d) {
  if (nest(d)) return -1;
  lua_State *L = d->L;
  d->p++;
  lua_createtable(L, 4, 0);
  skip_ws(d);
  if (d->p < d->end && *d->p == ']') {
    d->p++;
    lua_pushvalue(L, d->array_mt);
    lua_setmetatable(L, -2);
    d->depth--;
    return 0;
  }
  for (lua_Integer i = 1;; i++) {
    if (value(d)) return -1;
    lua_rawseti(L, -2, i);
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      continue;
    }
    if (d->p < d->end && *d->p == ']') break;
    return bad(d, "comma or array end", token_name(d, d->p), d->p);
  }
  d->p++;
  d->depth--;
  return 0;
}

/* The object at d->p ('{'): pushes a table. */
static int object(dec *d) {
  if (nest(d)) return -1;
  lua_State *L = d->L;
  d->p++;
  lua_createtable(L, 0, 8); /* most objects of the API have at most 8 keys: no rehash */
  skip_ws(d);
  if (d->p < d->end && *d->p == '}') {
    d->p++;
    d->depth--;
    return 0;
  }
  for (;;) {
    skip_ws(d);
    if (d->p >= d->end || *d->p != '"') return bad(d, "object key string", token_name(d, d->p), d->p);
    if (string(d)) return -1;
    skip_ws(d);
    if (d->p >= d->end || *d->p != ':') return bad(d, "colon", token_name(d, d->p), d->p);
    d->p++;
    if (value(d)) return -1;
    lua_rawset(L, -3);
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      continue;
    }
    if (d->p < d->end && *d->p == '}') break;
    return bad(d, "comma or object end", token_name(d, d->p), d->p);
  }
  d->p++;
  d->depth--;
  return 0;
}

/* Any value at d->p (after whitespace): pushes it. */
static int value(dec *d) {
  skip_ws(d);
  if (d->p >= d->end) return bad(d, "value", "T_END", d->p);
  switch (*d->p) {
  case '{': return object(d);
  case '[': return array(d);
  case '"': return string(d);
  case 't': case 'f': case 'n': return literal(d);
  default:
    if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9')) return number(d);
    return bad(d, "value", token_name(d, d->p), d->p);
  }
}

/* See binding.h. */
int hyp_json_decode(lua_State *L, const char *s, size_t n) {
  int base = lua_gettop(L);
  luaL_checkstack(L, 8, "json");
  luaL_getmetatable(L, HYP_ARRAY_MT);
  dec d = {L, s, s, s + n, 0, base + 1, 0, {0}};
  if (value(&d) == 0) {
    skip_ws(&d);
    if (d.p < d.end) bad(&d, "the end", "invalid token", d.p);
  }
  if (d.msg[0]) {
    lua_settop(L, base);
    lua_pushstring(L, d.msg);
    return 0;
  }
  lua_remove(L, base + 1); /* the metatable */
  return 1;
}
