/*
 * answer.c — what an attempt got, as Lua values: the value and meta of a
 * success (JSON decoded unless raw; true for an empty body), the error of an
 * HTTP failure (title/detail from the API's error body, a 422 validation list
 * summarised), and the info tables the on_request/on_response hooks see
 * (never the Authorization header; secrets scrubbed, see scrub.c). The engine (engine.c) decides; this file
 * only builds values.
 */
#include "hypatos.h"

#include <stdio.h>
#include <string.h>

/* Pushes a one-line summary of a 422 validation list at idx:
 * "body.name: field required; body.code: …" (at most 10 items). */
static void push_validation(lua_State *L, int idx) {
  hyp_buf b = {NULL, 0, 0};
  size_t n = lua_rawlen(L, idx);
  for (size_t i = 1; i <= n && i <= 10; i++) {
    lua_rawgeti(L, idx, (int)i);
    if (lua_type(L, -1) == LUA_TTABLE) {
      if (b.len) hyp_buf_adds(&b, "; ");
      lua_getfield(L, -1, "loc");
      if (lua_type(L, -1) == LUA_TTABLE) {
        size_t m = lua_rawlen(L, -1);
        for (size_t j = 1; j <= m; j++) {
          lua_rawgeti(L, -1, (int)j);
          const char *part = lua_tostring(L, -1);
          if (j > 1) hyp_buf_addc(&b, '.');
          hyp_buf_adds(&b, part ? part : "?");
          lua_pop(L, 1);
        }
        hyp_buf_adds(&b, ": ");
      }
      lua_pop(L, 1);
      lua_getfield(L, -1, "msg");
      hyp_buf_adds(&b, lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "invalid");
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pushlstring(L, b.data ? b.data : "", b.len);
  hyp_buf_free(&b);
}

/* Sets the fields every error of call c carries and pushes it. */
static void push_call_error(lua_State *L, const hyp_call *c, hyp_errinfo *e) {
  e->attempts = c->attempts;
  e->method = c->token_failed ? "POST" : c->req.method;
  e->url = c->token_failed ? c->out.url : c->req.url.data;
  hyp_push_error(L, e);
}

/* See hypatos.h: the error of an HTTP answer, title/detail from a JSON body. */
void hyp_answer_error(lua_State *L, const hyp_call *c, const hyp_result *in, const char *kind,
                      int retryable, double retry_after, const char *prefix, int keep_body) {
  int top = lua_gettop(L);
  hyp_errinfo e;
  hyp_errinfo_init(&e, kind, NULL);
  e.status = in->status;
  e.retryable = retryable;
  e.retry_after = retry_after;
  hyp_headers_push(L, &in->headers);
  e.headers_idx = lua_gettop(L);
  char msg[600];
  const char *detail_text = NULL;
  if (keep_body && in->body.len) {
    const char *ct = hyp_header_get(&in->headers, "content-type");
    if (hyp_is_json_type(ct) && hyp_json_decode(L, in->body.data, in->body.len)) {
      e.body_idx = lua_gettop(L);
      if (lua_type(L, -1) == LUA_TTABLE) {
        lua_getfield(L, e.body_idx, "title");
        e.title = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        lua_getfield(L, e.body_idx, "detail");
        if (lua_type(L, -1) == LUA_TSTRING) {
          e.detail = detail_text = lua_tostring(L, -1);
        } else if (lua_type(L, -1) == LUA_TTABLE) {
          /* a validation list: [{loc=[…], msg, type}] → "body.name: field required; …" */
          e.detail_idx = lua_gettop(L);
          push_validation(L, e.detail_idx);
          detail_text = lua_tostring(L, -1);
        }
      }
    } else {
      if (hyp_is_json_type(ct)) lua_pop(L, 1); /* decode message */
      size_t n = in->body.len < 65536 ? in->body.len : 65536;
      lua_pushlstring(L, in->body.data, n);
      e.body_idx = lua_gettop(L);
    }
  }
  if (e.title && detail_text)
    snprintf(msg, sizeof msg, "%s%s: %s", prefix, e.title, detail_text);
  else if (e.title || detail_text)
    snprintf(msg, sizeof msg, "%s%s", prefix, e.title ? e.title : detail_text);
  else
    snprintf(msg, sizeof msg, "%sHTTP %ld", prefix, in->status);
  e.message = msg;
  push_call_error(L, c, &e);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
}

/* See hypatos.h: value and meta of a 2xx answer (returns 2), or the
 * "decode" error of a body that should be JSON but is not (returns 1). */
int hyp_answer_value(lua_State *L, const hyp_engine *E, const hyp_call *c, const hyp_result *in,
                     double now) {
  const char *ct = hyp_header_get(&in->headers, "content-type");
  if (in->body_in_file || in->body.len == 0) {
    lua_pushboolean(L, 1);
  } else if (!c->req.raw && hyp_is_json_type(ct)) {
    if (!hyp_json_decode(L, in->body.data, in->body.len)) {
      char msg[300];
      snprintf(msg, sizeof msg, "response body is not valid JSON: %s", lua_tostring(L, -1));
      lua_pop(L, 1);
      hyp_errinfo e;
      hyp_errinfo_init(&e, "decode", msg);
      e.status = in->status;
      size_t n = in->body.len < 65536 ? in->body.len : 65536;
      lua_pushlstring(L, in->body.data, n);
      e.body_idx = lua_gettop(L);
      hyp_headers_push(L, &in->headers);
      e.headers_idx = lua_gettop(L);
      int top = e.body_idx - 1;
      push_call_error(L, c, &e);
      lua_replace(L, top + 1);
      lua_settop(L, top + 1);
      return 1;
    }
  } else {
    lua_pushlstring(L, in->body.data, in->body.len);
  }
  hyp_meta_push(L, in, &E->rate, c->attempts, now - c->started, now);
  return 2;
}

/* Pushes the hook's function (uv key k) and the info table common to both
 * hooks: {method, url, attempt, token_request}. */
static void hook_info(lua_State *L, int client_idx, const hyp_call *c, const char *k) {
  hyp_client_getuv(L, client_idx, k);
  lua_createtable(L, 0, 7);
  lua_pushstring(L, c->out.method);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, c->out.url);
  lua_setfield(L, -2, "url");
  lua_pushinteger(L, c->out.is_token ? c->token_attempts : c->attempts);
  lua_setfield(L, -2, "attempt");
  lua_pushboolean(L, c->out.is_token);
  lua_setfield(L, -2, "token_request");
}

/* Calls on_request({method, url, attempt, token_request, headers}) — the
 * headers without Authorization. */
void hyp_hook_request(lua_State *L, int client_idx, const hyp_engine *E, const hyp_call *c) {
  if (!E->opt.has_on_request) return;
  hook_info(L, client_idx, c, ".on_request");
  hyp_lines_push(L, &c->lines, c->out.nheaders, 1);
  lua_setfield(L, -2, "headers");
  hyp_scrub(L, -1, E);
  lua_call(L, 1, 0);
}

/* Calls on_response({…, status, headers, elapsed} or {…, error, code}). */
void hyp_hook_response(lua_State *L, int client_idx, const hyp_engine *E, const hyp_call *c,
                       const hyp_result *in) {
  if (!E->opt.has_on_response) return;
  hook_info(L, client_idx, c, ".on_response");
  if (in->failed) {
    lua_pushstring(L, in->message ? in->message : "transport failure");
    lua_setfield(L, -2, "error");
    lua_pushinteger(L, in->code);
    lua_setfield(L, -2, "code");
  } else {
    lua_pushinteger(L, in->status);
    lua_setfield(L, -2, "status");
    hyp_headers_push(L, &in->headers);
    lua_setfield(L, -2, "headers");
  }
  lua_pushnumber(L, in->elapsed);
  lua_setfield(L, -2, "elapsed");
  hyp_scrub(L, -1, E);
  lua_call(L, 1, 0);
}

