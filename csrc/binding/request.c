/*
 * binding/request.c — one call's options, checked and turned into a hyp_request
 * before anything is sent: the URL (url.c), caller headers (names checked, values
 * refused when they hold CR, LF or NUL), and the body (a string, JSON, or a
 * file streamed from disk with its size known up front).
 *
 * Misuse (unknown option, wrong type) raises "hypatos.request: …". Bad data
 * (an empty id, CR/LF in a header value, an unreadable body file) returns an
 * error code so the caller can answer nil, err and a loop can go on.
 */
#define _POSIX_C_SOURCE 200809L
#include "binding.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Headers the client owns; a caller may not set them. */
static const char *const RESERVED[] = {"authorization", "host", "content-length",
                                       "transfer-encoding", "connection", "expect", NULL};

#define req_error(L, ...) hyp_misuse((L), "hypatos.request", __VA_ARGS__)

static void oom(lua_State *L, int rc) {
  if (rc) luaL_error(L, "hypatos.request: out of memory");
}

/* HTTP token characters (RFC 9110 §5.6.2), for methods and header names. */
static int is_tchar(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* See binding.h. */
const char *hyp_request_arg(lua_State *L, int idx, const char *what) {
  size_t n;
  const char *s = luaL_checklstring(L, idx, &n);
  if (strlen(s) != n) req_error(L, "%s must not contain a NUL byte", what);
  return s;
}

/* Checks and appends the caller's headers table. Returns 0 or -1 (bad value). */
static int add_headers(lua_State *L, hyp_request *r, int idx, int *has_ct, char *msg,
                       size_t msglen) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) req_error(L, "header names must be strings");
    const char *name = lua_tostring(L, -2);
    for (const char *c = name; *c; c++)
      if (!is_tchar((unsigned char)*c)) req_error(L, "header name \"%s\" is not valid", name);
    if (!*name) req_error(L, "header name must not be empty");
    for (int i = 0; RESERVED[i]; i++)
      if (strcasecmp(name, RESERVED[i]) == 0)
        req_error(L, "header \"%s\" is set by the client and cannot be passed", name);
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      req_error(L, "header \"%s\" must be a string, got %s", name, luaL_typename(L, -1));
    size_t vlen;
    const char *v = lua_tolstring(L, -1, &vlen);
    for (size_t i = 0; i < vlen; i++) {
      unsigned char c = (unsigned char)v[i];
      if (c == '\r' || c == '\n' || c == '\0' || (c < 0x20 && c != '\t') || c == 0x7f) {
        snprintf(msg, msglen, "header \"%s\" contains a control character (CR, LF or NUL)",
                 name);
        lua_pop(L, 2);
        return -1;
      }
    }
    if (strcasecmp(name, "content-type") == 0) *has_ct = 1;
    if (strcasecmp(name, "accept") == 0) r->has_accept = 1;
    oom(L, hyp_buf_addf(&r->headers, "%s: %s", name, v) || hyp_buf_addc(&r->headers, '\0'));
    r->nheaders++;
    lua_pop(L, 1);
  }
  return 0;
}

/* Runs the JSON encoder in protected mode; on failure copies the message. */
static int encode_json(lua_State *L, hyp_request *r, int idx, char *msg, size_t msglen);

static int encode_protected(lua_State *L) {
  hyp_json_encode(L, 1, lua_touserdata(L, 2));
  return 0;
}

static int encode_json(lua_State *L, hyp_request *r, int idx, char *msg, size_t msglen) {
  lua_pushcfunction(L, encode_protected);
  lua_pushvalue(L, idx);
  lua_pushlightuserdata(L, &r->json);
  if (lua_pcall(L, 2, 0, 0) != 0) {
    snprintf(msg, msglen, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  r->body_kind = HYP_BODY_MEMORY;
  r->body = r->json.data ? r->json.data : "";
  r->body_len = r->json.len;
  return 0;
}

/* Stack indexes of the options a call was given (0 = absent). */
typedef struct given {
  int params, query, json, body, body_file, content_type, headers, output, raw, idempotent,
      timeout, max_retries, deadline, progress;
} given;

/* One pass over the options table: every key known, values pushed on the
 * stack and their indexes noted in g. */
static void read_options(lua_State *L, int opts, given *g) {
  luaL_checkstack(L, 20, "hypatos.request");
  lua_pushnil(L);
  while (lua_next(L, opts)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
    int *slot = NULL;
    switch (k[0]) {
    case 'b': slot = !strcmp(k, "body") ? &g->body : !strcmp(k, "body_file") ? &g->body_file : NULL; break;
    case 'c': slot = !strcmp(k, "content_type") ? &g->content_type : NULL; break;
    case 'd': slot = !strcmp(k, "deadline") ? &g->deadline : NULL; break;
    case 'h': slot = !strcmp(k, "headers") ? &g->headers : NULL; break;
    case 'i': slot = !strcmp(k, "idempotent") ? &g->idempotent : NULL; break;
    case 'j': slot = !strcmp(k, "json") ? &g->json : NULL; break;
    case 'm': slot = !strcmp(k, "max_retries") ? &g->max_retries : NULL; break;
    case 'o': slot = !strcmp(k, "output") ? &g->output : NULL; break;
    case 'p': slot = !strcmp(k, "params") ? &g->params : !strcmp(k, "progress") ? &g->progress : NULL; break;
    case 'q': slot = !strcmp(k, "query") ? &g->query : NULL; break;
    case 'r': slot = !strcmp(k, "raw") ? &g->raw : NULL; break;
    case 't': slot = !strcmp(k, "timeout") ? &g->timeout : NULL; break;
    }
    if (!slot)
      req_error(L, "unknown option \"%s\"",
                lua_type(L, -2) == LUA_TSTRING ? k : luaL_typename(L, -2));
    /* key, value → value, key: the value stays, lua_next goes on with the key */
    lua_pushvalue(L, -2);
    lua_remove(L, -3);
    *slot = lua_gettop(L) - 1;
  }
}

/* Type-checks the option at idx. */
static void want_at(lua_State *L, int idx, const char *k, int type) {
  if (lua_type(L, idx) != type)
    req_error(L, "option \"%s\" must be a %s, got %s", k, lua_typename(L, type),
              luaL_typename(L, idx));
}

/* See binding.h. */
int hyp_request_op(lua_State *L, const hyp_config *o, const hyp_op *op, int args, int body, hyp_request *r,
                   char *msg, size_t msglen) {
  int top = lua_gettop(L);
  memcpy(r->method, op->method, sizeof r->method);
  r->idempotent = op->idempotent;
  r->max_retries = -1;
  r->timeout = r->deadline = -1;
  oom(L, hyp_buf_adds(&r->url, o->base_url));
  if (hyp_url_path_args(L, &r->url, op->path, args, msg, msglen)) {
    lua_settop(L, top);
    return -1;
  }
  if (body && op->body == HYP_OP_QUERY) hyp_url_query(L, &r->url, body);
  if (body && op->body == HYP_OP_JSON) {
    if (encode_json(L, r, body, msg, msglen)) {
      lua_settop(L, top);
      return -1;
    }
    oom(L, hyp_buf_adds(&r->headers, "Content-Type: application/json") || hyp_buf_addc(&r->headers, '\0'));
    r->nheaders++;
  }
  lua_settop(L, top);
  return 0;
}

/* See binding.h. Returns 0, -1 (invalid data) or -2 (local I/O problem). */
int hyp_request_prepare(lua_State *L, const hyp_config *o, const char *method,
                        const char *path, int opts, hyp_request *r, char *msg, size_t msglen) {
  int top = lua_gettop(L);
  size_t mlen = strlen(method);
  if (mlen == 0 || mlen >= sizeof r->method) req_error(L, "method \"%s\" is not valid", method);
  for (size_t i = 0; i < mlen; i++) {
    unsigned char c = (unsigned char)method[i];
    if (!is_tchar(c)) req_error(L, "method \"%s\" is not valid", method);
    r->method[i] = (char)(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  }
  r->method[mlen] = '\0';
  r->max_retries = -1;
  r->timeout = r->deadline = -1;
  const char *m = r->method;
  r->idempotent = !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "PUT") ||
                  !strcmp(m, "DELETE") || !strcmp(m, "OPTIONS");

  given g;
  memset(&g, 0, sizeof g);
  if (opts) {
    opts = lua_absindex(L, opts);
    if (lua_type(L, opts) != LUA_TTABLE)
      req_error(L, "options must be a table, got %s", luaL_typename(L, opts));
    read_options(L, opts, &g);
  }

  /* URL: base + path with parameters + query */
  if (g.params) want_at(L, g.params, "params", LUA_TTABLE);
  oom(L, hyp_buf_adds(&r->url, o->base_url));
  if (hyp_url_path(L, &r->url, path, g.params, msg, msglen)) {
    lua_settop(L, top);
    return -1;
  }
  if (g.query) {
    want_at(L, g.query, "query", LUA_TTABLE);
    hyp_url_query(L, &r->url, g.query);
  }
  if (!opts) {
    lua_settop(L, top);
    return 0;
  }

  /* simple options */
  if (g.raw) {
    want_at(L, g.raw, "raw", LUA_TBOOLEAN);
    r->raw = lua_toboolean(L, g.raw);
  }
  if (g.idempotent) {
    want_at(L, g.idempotent, "idempotent", LUA_TBOOLEAN);
    r->idempotent = lua_toboolean(L, g.idempotent);
  }
  if (g.timeout) {
    want_at(L, g.timeout, "timeout", LUA_TNUMBER);
    r->timeout = (double)lua_tonumber(L, g.timeout);
    if (!(r->timeout >= 0)) req_error(L, "option \"timeout\" must be >= 0");
    if (r->timeout > HYP_MAX_SECONDS) req_error(L, "option \"timeout\" must be <= %.0f", HYP_MAX_SECONDS);
  }
  if (g.deadline) {
    want_at(L, g.deadline, "deadline", LUA_TNUMBER);
    r->deadline = (double)lua_tonumber(L, g.deadline);
    if (!(r->deadline > 0)) req_error(L, "option \"deadline\" must be > 0");
    if (r->deadline > HYP_MAX_SECONDS) req_error(L, "option \"deadline\" must be <= %.0f", HYP_MAX_SECONDS);
  }
  if (g.max_retries) {
    if (lua_type(L, g.max_retries) != LUA_TNUMBER || !lua_isinteger(L, g.max_retries) ||
        lua_tointeger(L, g.max_retries) < 0)
      req_error(L, "option \"max_retries\" must be an integer >= 0");
    if (lua_tonumber(L, g.max_retries) > HYP_MAX_RETRIES)
      req_error(L, "option \"max_retries\" must be <= %d", HYP_MAX_RETRIES);
    r->max_retries = (int)lua_tointeger(L, g.max_retries);
  }
  if (g.progress) {
    want_at(L, g.progress, "progress", LUA_TFUNCTION);
    r->has_progress = 1;
  }
  if (g.output) {
    want_at(L, g.output, "output", LUA_TSTRING);
    r->output_path = hyp_strdup(lua_tostring(L, g.output));
    oom(L, !r->output_path);
  }

  /* headers */
  int has_ct = 0;
  if (g.headers) {
    want_at(L, g.headers, "headers", LUA_TTABLE);
    if (add_headers(L, r, g.headers, &has_ct, msg, msglen)) {
      lua_settop(L, top);
      return -1;
    }
  }
  const char *ct = NULL;
  if (g.content_type) {
    want_at(L, g.content_type, "content_type", LUA_TSTRING);
    if (has_ct) req_error(L, "give Content-Type either in headers or as content_type, not both");
    ct = lua_tostring(L, g.content_type);
    for (const char *c = ct; *c; c++)
      if ((unsigned char)*c < 0x20 || *c == 0x7f) {
        snprintf(msg, msglen, "content_type contains a control character (CR, LF or NUL)");
        lua_settop(L, top);
        return -1;
      }
  }

  /* body: one of json, body, body_file */
  if (!!g.body + !!g.body_file + !!g.json > 1)
    req_error(L, "options body, body_file and json are exclusive");
  const char *dflt_ct = NULL;
  if (g.body) {
    want_at(L, g.body, "body", LUA_TSTRING);
    r->body_kind = HYP_BODY_MEMORY;
    r->body = lua_tolstring(L, g.body, &r->body_len); /* the caller pins opts.body */
    dflt_ct = "application/octet-stream";
  } else if (g.body_file) {
    want_at(L, g.body_file, "body_file", LUA_TSTRING);
    const char *fp = lua_tostring(L, g.body_file);
    struct stat st;
    const char *why = NULL;
    if (stat(fp, &st) != 0 || access(fp, R_OK) != 0)
      why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
      why = "not a regular file";
    if (why) {
      snprintf(msg, msglen, "body_file \"%s\" cannot be read: %s", fp, why);
      lua_settop(L, top);
      return -2;
    }
    r->body_kind = HYP_BODY_FILE;
    r->body_path = hyp_strdup(fp);
    oom(L, !r->body_path);
    r->body_size = (int64_t)st.st_size;
    dflt_ct = "application/octet-stream";
  } else if (g.json) {
    if (encode_json(L, r, g.json, msg, msglen)) {
      lua_settop(L, top);
      return -1;
    }
    dflt_ct = "application/json";
  }
  if (ct || (dflt_ct && !has_ct)) {
    oom(L, hyp_buf_adds(&r->headers, "Content-Type: ") || hyp_buf_adds(&r->headers, ct ? ct : dflt_ct) ||
               hyp_buf_addc(&r->headers, '\0'));
    r->nheaders++;
  }
  lua_settop(L, top);
  return 0;
}
