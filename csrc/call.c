/*
 * call.c — the hypatos.Call userdata: one call to the engine.
 *
 * client:request() creates one internally and drives it with libcurl;
 * client:prepare() hands one to Lua, so a driver written in Lua (a test with
 * a fake clock, an nginx driver over cosockets) runs the very same engine:
 *
 *   local call = client:prepare("GET", "/users", {query = {limit = 5}})
 *   local act = call:step(now)                 -- first action
 *   while act.type == "send" or act.type == "sleep" do
 *     if act.type == "send" then act = call:step(now, {status = 200, headers = {...}, body = "..."})
 *     else act = call:step(now + act.seconds) end
 *   end
 *   -- act.type == "done": act.value, act.meta; "fail": act.error
 *
 * A failed attempt is fed as {error = "connect"|"resolve"|"tls"|"tls_verify"|"timeout"|
 * "send"|"recv"|"closed"|"partial"|"too_large"|<libcurl code>, sent = bool, message = "..."}
 * ("too_large": an answer held in memory went over act.max_body_size);
 * a 2xx answer the driver streamed to act.output as {status, headers,
 * body_in_file = true}; after a hypatos.Multi performed the attempt, as
 * call:step(now, true). client:prepare_token() prepares the token request alone.
 */
#include "hypatos.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Lua-side failure names → the libcurl codes the engine classifies. */
static const struct {
  const char *name;
  int code;
} FAILURES[] = {{"resolve", CURLE_COULDNT_RESOLVE_HOST}, {"connect", CURLE_COULDNT_CONNECT},
                {"tls", CURLE_SSL_CONNECT_ERROR},       {"tls_verify", CURLE_PEER_FAILED_VERIFICATION},
                {"timeout", CURLE_OPERATION_TIMEDOUT},
                {"send", CURLE_SEND_ERROR},             {"recv", CURLE_RECV_ERROR},
                {"closed", CURLE_GOT_NOTHING},          {"partial", CURLE_PARTIAL_FILE},
                {"too_large", CURLE_FILESIZE_EXCEEDED},
                {NULL, 0}};

/* Checks argument idx is an open hypatos.Call. */
static hyp_calludata *check_call(lua_State *L, int idx) {
  hyp_calludata *cu = luaL_checkudata(L, idx, HYP_CALL_MT);
  if (cu->closed) luaL_error(L, "hypatos.Call is closed");
  if (cu->in_multi) luaL_error(L, "hypatos.Call is being sent by a hypatos.Multi");
  return cu;
}

/* Releases the call (idempotent): request, buffers, token fetch ownership. */
static int call_gc(lua_State *L) {
  hyp_calludata *cu = luaL_checkudata(L, 1, HYP_CALL_MT);
  if (cu->in_multi) return luaL_error(L, "hypatos.Call cannot be closed while a hypatos.Multi sends it");
  if (!cu->closed) {
    hyp_call_free(cu->E, &cu->c);
    hyp_result_free(&cu->res);
    cu->closed = 1;
  }
  return 0;
}

/* See hypatos.h. */
int hyp_call_setup(lua_State *L, int client_idx, hyp_calludata *cu, const char *method,
                   const char *path, int opts_idx, int token_only) {
  hyp_client *cl = lua_touserdata(L, client_idx);
  cu->E = &cl->E;
  cu->client = cl;
  cu->token_only = cu->c.token_only = token_only;
  cu->closed = 0;
  if (token_only) {
    strcpy(cu->c.req.method, "POST");
    cu->c.req.max_retries = -1; /* the client's defaults */
    cu->c.req.timeout = cu->c.req.deadline = -1;
    if (hyp_buf_adds(&cu->c.req.url, cl->E.opt.token_url)) luaL_error(L, "hypatos: out of memory");
    return 0;
  }
  char msg[512];
  int rc = hyp_request_prepare(L, &cl->E.opt, method, path, opts_idx, &cu->c.req, msg, sizeof msg);
  if (rc == 0) return 0;
  hyp_errinfo e;
  hyp_errinfo_init(&e, rc == -2 ? "io" : "invalid", msg);
  e.method = cu->c.req.method;
  lua_pushfstring(L, "%s%s", cl->E.opt.base_url, path);
  e.url = lua_tostring(L, -1);
  hyp_push_error(L, &e);
  lua_remove(L, -2);
  hyp_scrub(L, -1, &cl->E);
  return -1;
}

/* See hypatos.h. */
void hyp_call_recycle(hyp_calludata *cu) {
  hyp_call *c = &cu->c;
  hyp_request *r = &c->req;
  if (c->owns_fetch && cu->E) cu->E->fetching = 0;
  free(r->body_path);
  free(r->output_path);
  hyp_buf url = r->url, headers = r->headers, json = r->json;
  hyp_buf lines = c->lines, tokbody = c->tokbody;
  if (lines.data) hyp_wipe(lines.data, lines.cap); /* held the access token */
  memset(c, 0, sizeof *c);
  hyp_buf *keep[] = {&url, &headers, &json, &lines, &tokbody, &cu->res.headers, &cu->res.body};
  for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) {
    if (keep[i]->cap > 65536) hyp_buf_free(keep[i]); /* do not hold big bodies */
    hyp_buf_reset(keep[i]);
  }
  r->url = url;
  r->headers = headers;
  r->json = json;
  c->lines = lines;
  c->tokbody = tokbody;
}

/* Pushes a new hypatos.Call for the client at client_idx (see hyp_call_setup);
 * returns NULL with an error value pushed instead on bad data. */
static hyp_calludata *call_push(lua_State *L, int client_idx, const char *method,
                                const char *path, int opts_idx) {
  client_idx = lua_absindex(L, client_idx);
  if (opts_idx) opts_idx = lua_absindex(L, opts_idx);
  hyp_client_check(L, client_idx);
  hyp_calludata *cu = HYP_NEWUSERDATA(L, sizeof *cu);
  memset(cu, 0, sizeof *cu);
  luaL_setmetatable(L, HYP_CALL_MT);
  int idx = lua_gettop(L);
  lua_createtable(L, 0, 3); /* pins the client, the options and the body */
  lua_pushvalue(L, client_idx);
  lua_setfield(L, -2, "client");
  if (opts_idx && lua_type(L, opts_idx) == LUA_TTABLE) {
    lua_pushvalue(L, opts_idx);
    lua_setfield(L, -2, "opts");
    lua_getfield(L, opts_idx, "body");
    lua_setfield(L, -2, "body");
  }
  lua_setuservalue(L, idx);
  hyp_call_init(&cu->c);
  if (hyp_call_setup(L, client_idx, cu, method, path, opts_idx, 0) == 0) return cu;
  lua_remove(L, idx); /* the error stays */
  return NULL;
}

/* Reads a result table at idx into res (resetting it first). */
static void read_result(lua_State *L, int idx, hyp_result *res) {
  hyp_buf_reset(&res->headers);
  hyp_buf_reset(&res->body);
  res->failed = res->code = res->sent = res->io = res->body_in_file = 0;
  res->status = 0;
  res->elapsed = 0;
  res->message = NULL;
  luaL_checktype(L, idx, LUA_TTABLE);
  int t = hyp_getfield(L, idx, "error");
  if (t != LUA_TNIL) {
    res->failed = 1;
    if (t == LUA_TNUMBER) {
      lua_Number code = lua_tonumber(L, -1);
      if (!(code >= 1 && code < 1000)) luaL_error(L, "hypatos.Call: a numeric failure must be a libcurl code");
      res->code = (int)code;
    } else {
      const char *name = luaL_checkstring(L, -1);
      for (int i = 0; FAILURES[i].name && !res->code; i++)
        if (strcmp(FAILURES[i].name, name) == 0) res->code = FAILURES[i].code;
      if (!res->code) luaL_error(L, "hypatos.Call: unknown failure \"%s\"", name);
    }
    lua_getfield(L, idx, "sent");
    res->sent = lua_toboolean(L, -1);
    lua_getfield(L, idx, "message");
    snprintf(res->msgbuf, sizeof res->msgbuf, "%s",
             lua_isstring(L, -1) ? lua_tostring(L, -1) : curl_easy_strerror((CURLcode)res->code));
    res->message = res->msgbuf;
    lua_pop(L, 3);
    return;
  }
  lua_pop(L, 1);
  if (hyp_getfield(L, idx, "status") != LUA_TNUMBER)
    luaL_error(L, "hypatos.Call: a result needs a numeric status or an error");
  lua_Number status = lua_tonumber(L, -1);
  if (!(status >= 100 && status <= 999)) luaL_error(L, "hypatos.Call: a result status must be 100 to 999");
  res->status = (long)status;
  lua_pop(L, 1);
  if (hyp_getfield(L, idx, "headers") == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      size_t nl, vl;
      const char *n = lua_tolstring(L, -2, &nl), *v = lua_tolstring(L, -1, &vl);
      if (lua_type(L, -2) == LUA_TSTRING && v) hyp_header_add(&res->headers, n, nl, v, vl);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  if (hyp_getfield(L, idx, "body") == LUA_TSTRING) {
    size_t n;
    const char *b = lua_tolstring(L, -1, &n);
    hyp_buf_add(&res->body, b, n);
  }
  lua_pop(L, 1);
  lua_getfield(L, idx, "elapsed");
  res->elapsed = (double)lua_tonumber(L, -1);
  lua_getfield(L, idx, "body_in_file"); /* the driver wrote a 2xx body to act.output */
  res->body_in_file = lua_toboolean(L, -1);
  lua_pop(L, 2);
}

/* Pushes an action table for a Lua driver. */
static void push_action(lua_State *L, const hyp_action *act) {
  static const char *const NAMES[] = {"", "send", "sleep", "done", "fail"};
  int results = act->type == HYP_ACT_DONE ? 2 : act->type == HYP_ACT_FAIL ? 1 : 0;
  lua_createtable(L, 0, 8);
  lua_pushstring(L, NAMES[act->type]);
  lua_setfield(L, -2, "type");
  if (act->type == HYP_ACT_SLEEP) {
    lua_pushnumber(L, act->seconds);
    lua_setfield(L, -2, "seconds");
  } else if (act->type == HYP_ACT_SEND) {
    const hyp_outgoing *o = act->out;
    lua_pushstring(L, o->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, o->url);
    lua_setfield(L, -2, "url");
    hyp_lines_push(L, o->headers, o->nheaders, 0);
    lua_setfield(L, -2, "headers");
    if (o->body_kind == HYP_BODY_MEMORY) {
      lua_pushlstring(L, o->body, o->body_len);
      lua_setfield(L, -2, "body");
    } else if (o->body_kind == HYP_BODY_FILE) {
      lua_pushstring(L, o->body_path);
      lua_setfield(L, -2, "body_file");
      lua_pushnumber(L, (lua_Number)o->body_size);
      lua_setfield(L, -2, "body_size");
    }
    if (o->output_path) {
      lua_pushstring(L, o->output_path);
      lua_setfield(L, -2, "output");
    }
    lua_pushnumber(L, o->timeout);
    lua_setfield(L, -2, "timeout");
    lua_pushnumber(L, o->connect_timeout);
    lua_setfield(L, -2, "connect_timeout");
    if (o->max_body) { /* answers held in memory: at most this many bytes */
      lua_pushnumber(L, (lua_Number)o->max_body);
      lua_setfield(L, -2, "max_body_size");
    }
    if (o->deadline > 0) { /* a hard bound on the whole attempt, streamed or not */
      lua_pushnumber(L, o->deadline);
      lua_setfield(L, -2, "deadline");
    }
    lua_pushboolean(L, o->stream);
    lua_setfield(L, -2, "stream");
    lua_pushboolean(L, o->fresh);
    lua_setfield(L, -2, "fresh");
    lua_pushboolean(L, o->is_token);
    lua_setfield(L, -2, "token_request");
  }
  /* move value/meta or error (below the new table) into it */
  if (results == 2) {
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "value");
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "meta");
    lua_replace(L, -3);
    lua_pop(L, 1);
  } else if (results == 1) {
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "error");
    lua_replace(L, -2);
  }
}

/* The step itself, run in protected mode by call_step: arguments the call,
 * its client and the result pointer (light userdata, may be NULL), now. */
static int step_protected(lua_State *L) {
  hyp_calludata *cu = lua_touserdata(L, 1);
  const hyp_result *in = lua_touserdata(L, 3);
  double now = (double)lua_tonumber(L, 4);
  lua_settop(L, 2);
  hyp_action act;
  hyp_call_step(L, 2, cu->E, &cu->c, now, in, &act);
  cu->sending = act.type == HYP_ACT_SEND;
  if (act.type == HYP_ACT_DONE && cu->token_only) {
    lua_pushnil(L); /* no meta for token-only calls */
  }
  push_action(L, &act);
  return 1;
}

/** call:step(now [, result]) → action table. See the file banner. While the
 * engine steps (it may run hooks and the token cache), the client counts as
 * busy: closing it from there raises instead of freeing what the step uses. */
static int call_step(lua_State *L) {
  hyp_calludata *cu = check_call(L, 1);
  double now = (double)luaL_checknumber(L, 2);
  const hyp_result *in = NULL;
  if (lua_isboolean(L, 3) && lua_toboolean(L, 3)) {
    if (!cu->sending) return luaL_error(L, "hypatos.Call: no attempt was sent");
    in = &cu->res; /* a hypatos.Multi left the answer there */
  } else if (!lua_isnoneornil(L, 3)) {
    read_result(L, 3, &cu->res);
    in = &cu->res;
  }
  lua_settop(L, 1);
  lua_getuservalue(L, 1);
  lua_getfield(L, -1, "client");
  hyp_client *cl = hyp_client_check(L, -1);
  lua_pushcfunction(L, step_protected);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, -3);
  lua_pushlightuserdata(L, (void *)in);
  lua_pushnumber(L, now);
  cu->sending = 0;
  cl->busy++;
  int rc = lua_pcall(L, 4, 1, 0);
  cl->busy--;
  if (rc != 0) return lua_error(L);
  return 1;
}

/** client:prepare(method, path [, opts]) → call | nil, err (bad data). */
int hyp_call_new(lua_State *L) {
  const char *method = luaL_checkstring(L, 2);
  const char *path = luaL_checkstring(L, 3);
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
  if (call_push(L, 1, method, path, lua_isnoneornil(L, 4) ? 0 : 4)) return 1;
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

/** client:prepare_token() → call: the token request alone, as client:token()
 * makes it (its step ends with done: value = the token, or fail). */
int hyp_call_new_token(lua_State *L) {
  hyp_client_check(L, 1);
  hyp_calludata *cu = HYP_NEWUSERDATA(L, sizeof *cu);
  memset(cu, 0, sizeof *cu);
  luaL_setmetatable(L, HYP_CALL_MT);
  int idx = lua_gettop(L);
  lua_createtable(L, 0, 1);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "client");
  lua_setuservalue(L, idx);
  hyp_call_init(&cu->c);
  hyp_call_setup(L, 1, cu, "POST", "", 0, 1);
  return 1;
}

/** call:close() — releases the call; idempotent. */
static int call_close(lua_State *L) { return call_gc(L); }

/* Registers the "hypatos.Call" metatable. */
int hyp_call_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"step", call_step}, {"close", call_close}, {NULL, NULL}};
  luaL_newmetatable(L, HYP_CALL_MT);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, call_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, call_gc);
  lua_setfield(L, -2, "__close");
  lua_pushliteral(L, HYP_CALL_MT);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  return 0;
}
