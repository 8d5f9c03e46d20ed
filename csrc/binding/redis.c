/*
 * binding/redis.c — hypatos.Redis: one blocking Redis connection (hiredis,
 * behind transport/redis.h) for the shared store (design.md §6).
 *
 *   local conn = core.redis{host = "127.0.0.1", port = 6379, db = 0, username = "u",
 *                           password = "p", timeout = 0.1}   -- raises on misuse; never connects
 *   conn:call("SET", "k", 1)               -- reply | nil, "redis: …" | nil, "connection: …"
 *   conn:eval(sha, script, keys, args)     -- EVALSHA, SCRIPT LOAD and EVALSHA again on NOSCRIPT
 *   conn:close()                           -- idempotent; also __gc and __close
 *
 * Replies: status → string, integer → integer, bulk → string, nil → core.null,
 * array → array (nested; an error inside one → {err = message}). The
 * password never appears in an error or in tostring(conn).
 */
#include "binding.h"

#include "../transport/redis.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define HYP_REDIS_MT "hypatos.Redis"
#define WHO "hypatos.redis"

typedef struct redis_ud {
  hyp_redis *r;            /* NULL once closed */
  hyp_redis_reply *held;   /* the reply being turned into Lua values: freed by the next
                              command or the destructor if that raises (out of memory) */
  int busy;                /* a reply is being converted: a finalizer may not use or close it */
  char label[300];         /* "host:port/db" for tostring */
} redis_ud;

/* The options of core.redis, checked one by one (unknown keys raise). */
typedef struct redis_opts {
  const char *host;
  lua_Integer port, db;
  const char *username, *password;
  size_t password_len;
  double timeout;
} redis_opts;

/* Checks argument idx is an open connection. */
static redis_ud *check_open(lua_State *L, int idx) {
  redis_ud *u = luaL_checkudata(L, idx, HYP_REDIS_MT);
  if (!u->r) luaL_error(L, "hypatos.Redis is closed");
  if (u->busy) luaL_error(L, "hypatos.Redis is busy (used from a finalizer during a call)");
  return u;
}

/* Frees the reply left by a conversion that raised. */
static void drop_held(redis_ud *u) {
  hyp_redis_reply_free(u->held);
  u->held = NULL;
}

/* The integer option on the top of the stack, within [lo, hi]; raises naming it. */
static lua_Integer opt_integer(lua_State *L, const char *name, lua_Integer lo, lua_Integer hi) {
  if (lua_type(L, -1) != LUA_TNUMBER || !lua_isinteger(L, -1))
    hyp_misuse(L, WHO, "option \"%s\" must be an integer, got %s", name,
               lua_type(L, -1) == LUA_TNUMBER ? "a non-integer number" : luaL_typename(L, -1));
  lua_Integer v = lua_tointeger(L, -1);
  if (v < lo || v > hi)
    hyp_misuse(L, WHO, "option \"%s\" must be an integer from %lld to %lld, got %lld", name,
               (long long)lo, (long long)hi, (long long)v);
  return v;
}

/* The string option on the top of the stack (not empty; no NUL unless binary). */
static const char *opt_string(lua_State *L, const char *name, int binary, size_t *len) {
  if (lua_type(L, -1) != LUA_TSTRING)
    hyp_misuse(L, WHO, "option \"%s\" must be a string, got %s", name, luaL_typename(L, -1));
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  if (n == 0) hyp_misuse(L, WHO, "option \"%s\" must not be empty", name);
  if (!binary && strlen(s) != n) hyp_misuse(L, WHO, "option \"%s\" must not contain NUL", name);
  if (len) *len = n;
  return s;
}

/* Reads the options table at idx into o (strings stay on the stack: the table holds them). */
static void read_opts(lua_State *L, int idx, redis_opts *o) {
  memset(o, 0, sizeof *o);
  o->host = "127.0.0.1";
  o->port = 6379;
  o->timeout = 0.1;
  if (lua_isnoneornil(L, idx)) return;
  if (lua_type(L, idx) != LUA_TTABLE)
    hyp_misuse(L, WHO, "options must be a table, got %s", luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      hyp_misuse(L, WHO, "option names must be strings, got %s", luaL_typename(L, -2));
    const char *k = lua_tostring(L, -2);
    if (strcmp(k, "host") == 0) {
      size_t n;
      o->host = opt_string(L, k, 0, &n);
      if (n > 255) hyp_misuse(L, WHO, "option \"host\" must be at most 255 bytes, got %zu", n);
    } else if (strcmp(k, "port") == 0) {
      o->port = opt_integer(L, k, 1, 65535);
    } else if (strcmp(k, "db") == 0) {
      o->db = opt_integer(L, k, 0, INT_MAX);
    } else if (strcmp(k, "username") == 0) {
      o->username = opt_string(L, k, 0, NULL);
    } else if (strcmp(k, "password") == 0) {
      o->password = opt_string(L, k, 1, &o->password_len);
    } else if (strcmp(k, "timeout") == 0) {
      if (lua_type(L, -1) != LUA_TNUMBER)
        hyp_misuse(L, WHO, "option \"timeout\" must be a number, got %s", luaL_typename(L, -1));
      double t = (double)lua_tonumber(L, -1);
      if (!(t > 0) || t > HYP_MAX_SECONDS)
        hyp_misuse(L, WHO, "option \"timeout\" must be > 0 and <= %g seconds, got %g", HYP_MAX_SECONDS, t);
      o->timeout = t;
    } else {
      hyp_misuse(L, WHO, "unknown option \"%s\"", k);
    }
    lua_pop(L, 1);
  }
  if (o->username && !o->password) hyp_misuse(L, WHO, "option \"username\" needs \"password\"");
}

/** core.redis([opts]) → a hypatos.Redis connection (not connected yet: the
 * first command connects). opts: host ("127.0.0.1"), port (6379), db (0),
 * username, password, timeout (0.1 s). Raises on misuse, naming the key. */
static int l_redis(lua_State *L) {
  redis_opts o;
  read_opts(L, 1, &o);
  redis_ud *u = HYP_NEWUSERDATA(L, sizeof *u);
  memset(u, 0, sizeof *u); /* zeroed and given its metatable before anything is acquired */
  luaL_setmetatable(L, HYP_REDIS_MT);
  snprintf(u->label, sizeof u->label, "%s:%d/%d", o.host, (int)o.port, (int)o.db);
  hyp_redis_config cfg = {o.host,     (int)o.port,     (int)o.db, o.username,
                          o.password, o.password_len, o.timeout};
  u->r = hyp_redis_new(&cfg);
  if (!u->r) return luaL_error(L, WHO ": out of memory");
  return 1;
}

/* Adds the argument at idx (a string or a number) to the anchor table at
 * anchor as its next item; raises naming what (e.g. "argument 3", "keys[2]"). */
static void add_arg(lua_State *L, int idx, int anchor, const char *who, const char *what, int item) {
  idx = lua_absindex(L, idx);
  int t = lua_type(L, idx);
  if (t == LUA_TSTRING) {
    lua_pushvalue(L, idx);
  } else if (t == LUA_TNUMBER) {
    char buf[64];
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, idx))
      snprintf(buf, sizeof buf, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
    else
#endif
      snprintf(buf, sizeof buf, "%.17g", (double)lua_tonumber(L, idx));
    lua_pushstring(L, buf);
  } else if (item) {
    hyp_misuse(L, who, "%s[%d] must be a string or a number, got %s", what, item, luaL_typename(L, idx));
  } else {
    hyp_misuse(L, who, "%s must be a string or a number, got %s", what, luaL_typename(L, idx));
  }
  lua_rawseti(L, anchor, (int)lua_rawlen(L, anchor) + 1);
}

/* Adds the items of the array at idx (nil: none) to the anchor. */
static void add_array(lua_State *L, int idx, int anchor, const char *who, const char *what) {
  if (lua_isnoneornil(L, idx)) return;
  if (lua_type(L, idx) != LUA_TTABLE)
    hyp_misuse(L, who, "%s must be an array, got %s", what, luaL_typename(L, idx));
  int n = (int)lua_rawlen(L, idx);
  luaL_checkstack(L, 4, NULL);
  for (int i = 1; i <= n; i++) {
    hyp_rawgeti(L, idx, i);
    add_arg(L, -1, anchor, who, what, i);
    lua_pop(L, 1);
  }
}

/* Runs the command made of the strings of the anchor table (its items hold
 * them while hiredis sends). Returns the reply, or NULL with the message in
 * err. */
static hyp_redis_reply *command(lua_State *L, redis_ud *u, int anchor, char *err, size_t errlen) {
  int n = (int)lua_rawlen(L, anchor);
  const char **argv = HYP_NEWUSERDATA(L, (size_t)n * (sizeof *argv + sizeof(size_t)));
  size_t *lens = (size_t *)(void *)(argv + n);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, anchor, i + 1);
    argv[i] = lua_tolstring(L, -1, &lens[i]);
    lua_pop(L, 1); /* the anchor keeps it */
  }
  drop_held(u);
  hyp_redis_reply *x = hyp_redis_command(u->r, n, argv, lens, err, errlen);
  lua_pop(L, 1); /* argv */
  return x;
}

/* Pushes the reply x as a Lua value (null_idx: core.null). Errors inside an
 * array become {err = message}. */
static void push_reply(lua_State *L, redis_ud *u, const hyp_redis_reply *x, int null_idx) {
  size_t len;
  const char *s;
  luaL_checkstack(L, 4, "hypatos.Redis: reply nested too deep");
  switch (hyp_redis_reply_type(x)) {
  case HYP_REDIS_STRING:
  case HYP_REDIS_STATUS:
    s = hyp_redis_reply_str(x, &len);
    lua_pushlstring(L, s, len);
    break;
  case HYP_REDIS_INTEGER:
    lua_pushinteger(L, (lua_Integer)hyp_redis_reply_integer(x));
    break;
  case HYP_REDIS_ARRAY: {
    size_t n = hyp_redis_reply_count(x);
    lua_createtable(L, n > INT_MAX ? INT_MAX : (int)n, 0);
    for (size_t i = 0; i < n; i++) {
      push_reply(L, u, hyp_redis_reply_at(x, i), null_idx);
      lua_rawseti(L, -2, (int)(i + 1));
    }
    break;
  }
  case HYP_REDIS_ERROR: {
    char msg[1024];
    s = hyp_redis_reply_str(x, &len);
    lua_createtable(L, 0, 1);
    lua_pushstring(L, hyp_redis_message(u->r, "", s, len, msg, sizeof msg));
    lua_setfield(L, -2, "err");
    break;
  }
  default: /* HYP_REDIS_NIL (hiredis 0.14 knows no other type) */
    lua_pushvalue(L, null_idx);
    break;
  }
}

/* Pushes the reply held by the connection (argument 1, a light userdata) as
 * a Lua value, core.null being argument 2; run in protected mode. */
static int push_held(lua_State *L) {
  redis_ud *u = lua_touserdata(L, 1);
  push_reply(L, u, u->held, 2);
  return 1;
}

/* The result of a command: the reply as a Lua value (returns 1), or nil and
 * "redis: …" / "connection: …" (returns 2). Frees x, also when building the
 * value raises (out of memory): the error is raised once x is freed. */
static int result(lua_State *L, redis_ud *u, hyp_redis_reply *x, const char *err) {
  if (!x) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  if (hyp_redis_reply_type(x) == HYP_REDIS_ERROR) {
    char msg[1024];
    size_t len;
    const char *s = hyp_redis_reply_str(x, &len);
    hyp_redis_message(u->r, "redis: ", s, len, msg, sizeof msg);
    hyp_redis_reply_free(x);
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
  }
  u->held = x; /* if pushing the function raises, the next command or close frees it */
  lua_pushcfunction(L, push_held);
  lua_pushlightuserdata(L, u);
  lua_pushvalue(L, lua_upvalueindex(1));
  u->busy = 1;
  int rc = lua_pcall(L, 2, 1, 0);
  u->busy = 0;
  drop_held(u);
  if (rc != 0) return lua_error(L);
  return 1;
}

/** conn:call(cmd, ...) → reply, or nil and "redis: <message>" (an error reply)
 * or "connection: <reason>". Arguments are strings or numbers (integers
 * exactly, other numbers as %.17g). */
static int redis_call(lua_State *L) {
  redis_ud *u = check_open(L, 1);
  int top = lua_gettop(L);
  if (top < 2) hyp_misuse(L, "hypatos.Redis:call", "a command expected");
  lua_createtable(L, top - 1, 0);
  int anchor = lua_gettop(L);
  char what[32];
  for (int i = 2; i <= top; i++) {
    snprintf(what, sizeof what, "argument %d", i - 1);
    add_arg(L, i, anchor, "hypatos.Redis:call", what, 0);
  }
  char err[512];
  hyp_redis_reply *x = command(L, u, anchor, err, sizeof err);
  return result(L, u, x, err);
}

/* True when x is an error reply starting with "NOSCRIPT". */
static int is_noscript(const hyp_redis_reply *x) {
  size_t len;
  if (hyp_redis_reply_type(x) != HYP_REDIS_ERROR) return 0;
  const char *s = hyp_redis_reply_str(x, &len);
  return len >= 8 && memcmp(s, "NOSCRIPT", 8) == 0;
}

/** conn:eval(sha, script, keys, args) → reply | nil, err: EVALSHA sha #keys
 * keys... args...; on NOSCRIPT, SCRIPT LOAD script and EVALSHA once more.
 * Raises when the script's SHA1 is not sha (a programming mistake). */
static int redis_eval(lua_State *L) {
  static const char *WHO_EVAL = "hypatos.Redis:eval";
  redis_ud *u = check_open(L, 1);
  lua_settop(L, 5);
  if (lua_type(L, 2) != LUA_TSTRING)
    hyp_misuse(L, WHO_EVAL, "sha must be a string, got %s", luaL_typename(L, 2));
  if (lua_type(L, 3) != LUA_TSTRING)
    hyp_misuse(L, WHO_EVAL, "script must be a string, got %s", luaL_typename(L, 3));
  lua_newtable(L); /* 6: EVALSHA sha #keys keys... args... */
  lua_pushliteral(L, "EVALSHA");
  lua_rawseti(L, 6, 1);
  lua_pushvalue(L, 2);
  lua_rawseti(L, 6, 2);
  lua_pushliteral(L, "0");
  lua_rawseti(L, 6, 3);
  add_array(L, 4, 6, WHO_EVAL, "keys");
  char num[24];
  snprintf(num, sizeof num, "%d", (int)lua_rawlen(L, 6) - 3);
  lua_pushstring(L, num);
  lua_rawseti(L, 6, 3); /* numkeys */
  add_array(L, 5, 6, WHO_EVAL, "args");

  char err[512];
  hyp_redis_reply *x = command(L, u, 6, err, sizeof err);
  if (!x || !is_noscript(x)) return result(L, u, x, err);
  hyp_redis_reply_free(x);

  lua_createtable(L, 3, 0); /* 7: SCRIPT LOAD script */
  lua_pushliteral(L, "SCRIPT");
  lua_rawseti(L, 7, 1);
  lua_pushliteral(L, "LOAD");
  lua_rawseti(L, 7, 2);
  lua_pushvalue(L, 3);
  lua_rawseti(L, 7, 3);
  x = command(L, u, 7, err, sizeof err);
  if (!x || hyp_redis_reply_type(x) == HYP_REDIS_ERROR) return result(L, u, x, err);
  size_t len, shalen;
  const char *got = hyp_redis_reply_str(x, &len);
  const char *sha = lua_tolstring(L, 2, &shalen);
  int same = hyp_redis_reply_type(x) == HYP_REDIS_STRING && len == shalen && strncasecmp(got, sha, len) == 0;
  if (!same) {
    char shown[64];
    snprintf(shown, sizeof shown, "%.*s", (int)(len < 40 ? len : 40), got);
    hyp_redis_reply_free(x);
    return hyp_misuse(L, WHO_EVAL, "the script's SHA1 is %s, not the sha given", shown);
  }
  hyp_redis_reply_free(x);
  x = command(L, u, 6, err, sizeof err);
  return result(L, u, x, err);
}

/** conn:close() — closes the connection; idempotent. The one destructor: also
 * __gc and __close. */
static int redis_close(lua_State *L) {
  redis_ud *u = luaL_checkudata(L, 1, HYP_REDIS_MT);
  if (u->busy) return luaL_error(L, "hypatos.Redis is busy (closed from a finalizer during a call)");
  drop_held(u);
  hyp_redis_free(u->r);
  u->r = NULL;
  return 0;
}

/** tostring(conn): "hypatos.Redis(host:port/db)" (", closed" once closed);
 * never the password. */
static int redis_tostring(lua_State *L) {
  redis_ud *u = luaL_checkudata(L, 1, HYP_REDIS_MT);
  lua_pushfstring(L, "%s(%s%s)", HYP_REDIS_MT, u->label, u->r ? "" : ", closed");
  return 1;
}

/* See binding.h. Needs core.null in the module table on the top (hyp_json_open). */
int hyp_redis_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"call", redis_call}, {"eval", redis_eval},
                                     {"close", redis_close}, {NULL, NULL}};
  luaL_newmetatable(L, HYP_REDIS_MT);
  lua_newtable(L);
  lua_getfield(L, -3, "null"); /* the replies' nil: an upvalue of call and eval */
  luaL_setfuncs(L, methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, redis_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, redis_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, redis_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, HYP_REDIS_MT);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_redis);
  lua_setfield(L, -2, "redis");
  return 0;
}
