/*
 * binding/core.c — luaopen_hypatos_core, the only exported symbol.
 *
 * The module table holds new(), VERSION, the JSON helpers (json_encode,
 * json_decode, array, array_mt, null), error/is_error, loopback_url, show_url, now, sleep,
 * wait_signal, curl_version, multi, tmpfile, redis, http_head and cosocket_stale. The Lua layer
 * (lua/hypatos/init.lua) adds resources on top of the same table.
 */
#include "binding.h"

#include "../engine/urls.h"
#include "../transport/hmac.h"


/** core.curl_version() → "7.88.1" (the libcurl in use). */
static int l_curl_version(lua_State *L) {
  lua_pushstring(L, hyp_curl_version());
  return 1;
}

/** core.loopback_url(url) → true when the URL's host is a loopback address
 * (parsed: 127.0.0.0/8, ::1, localhost); such traffic is never proxied. */
static int l_loopback_url(lua_State *L) {
  lua_pushboolean(L, hyp_loopback_url(luaL_checkstring(L, 1)));
  return 1;
}

/** core.show_url(url) → the parts of url a message may show: scheme, host
 * (and port) and path, without user info, query or fragment
 * ("https://id:pw@h:8/v2?key=x" → "https://h:8/v2"). */
static int l_show_url(lua_State *L) {
  size_t n;
  const char *url = luaL_checklstring(L, 1, &n);
  char *shown = HYP_NEWUSERDATA(L, n + 1);
  lua_pushlstring(L, shown, hyp_url_shown(url, shown, n + 1));
  return 1;
}

/** core.sha1_hex(s) → the SHA-1 of s as 40 hex digits (the name Redis gives
 * a script). Raises when libcrypto fails. */
static int l_sha1_hex(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char hex[41];
  if (hyp_sha1_hex(s, n, hex)) return luaL_error(L, "hypatos.core.sha1_hex: libcrypto failed");
  lua_pushstring(L, hex);
  return 1;
}

/** core.now() → wall-clock seconds (the engine's clock). */
static int l_now(lua_State *L) {
  lua_pushnumber(L, hyp_now());
  return 1;
}

/* The stop test of a sleep: SIGINT in the standalone interpreter. */
static int sleep_stop(void *L) { return hyp_interrupted(L); }

/** core.sleep(seconds) — blocks the process (the libcurl driver's sleep); raises
 * "hypatos: interrupted" at once on SIGINT in lua/luajit. */
static int l_sleep(lua_State *L) {
  if (hyp_sleep_until((double)luaL_checknumber(L, 1), sleep_stop, L)) return hyp_interrupt_error(L);
  return 0;
}

/** core.wait_signal() → "INT", "TERM" or "HUP": blocks until the process is
 * sent one of them (taken, so the interpreter's handler does not run).
 * Raises when the signal mask cannot be changed. */
static int l_wait_signal(lua_State *L) {
  const char *name = hyp_wait_signal();
  if (!name) return luaL_error(L, "hypatos.core.wait_signal: cannot wait for signals");
  lua_pushstring(L, name);
  return 1;
}

#if defined(__GNUC__)
__attribute__((visibility("default")))
#endif
int luaopen_hypatos_core(lua_State *L);

int luaopen_hypatos_core(lua_State *L) {
  if (hyp_curl_global_init() != 0) return luaL_error(L, "hypatos.core: libcurl failed to initialise");
  lua_newtable(L);
  hyp_os_open(L);
  hyp_keys_open(L);
  hyp_errors_open(L);
  hyp_call_open(L);
  hyp_client_open(L);
  hyp_multi_open(L);
  hyp_op_open(L);
  hyp_tmpfile_open(L);
  hyp_json_open(L);
  hyp_redis_open(L); /* after json: replies use core.null */
  hyp_meta_open(L);
  hyp_httphead_open(L);
  hyp_cosock_open(L);
  lua_pushcfunction(L, l_loopback_url);
  lua_setfield(L, -2, "loopback_url");
  lua_pushcfunction(L, l_show_url);
  lua_setfield(L, -2, "show_url");
  lua_pushcfunction(L, l_now);
  lua_setfield(L, -2, "now");
  lua_pushcfunction(L, l_sha1_hex);
  lua_setfield(L, -2, "sha1_hex");
  lua_pushcfunction(L, l_sleep);
  lua_setfield(L, -2, "sleep");
  lua_pushcfunction(L, l_wait_signal);
  lua_setfield(L, -2, "wait_signal");
  lua_pushcfunction(L, l_curl_version);
  lua_setfield(L, -2, "curl_version");
  lua_pushliteral(L, HYP_VERSION);
  lua_setfield(L, -2, "VERSION");
  return 1;
}
