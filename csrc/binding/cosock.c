/*
 * binding/cosock.c — core.cosocket_stale: whether a connection nginx's
 * keep-alive pool handed back (an ngx.socket.tcp of ngx_lua) holds bytes
 * nobody asked for, or was closed by the server, looked at on the socket
 * itself (the cosocket transport's pool rule, lua/hypatos/cosocket.lua).
 *
 * nginx closes a pooled connection that becomes readable, but only when its
 * event loop runs; a connection that went back to the pool and is taken again
 * in the same turn of the loop has not been looked at. The socket's
 * descriptor comes from ngx_lua's own exported function for it
 * (ngx_http_lua_ffi_socket_tcp_hack_fd, given no new descriptor: it only
 * returns the present one), found with dlsym: nginx loads its modules with
 * RTLD_GLOBAL, and OpenResty exports its symbols for LuaJIT's FFI. A build of
 * ngx_lua without it (before 0.10.16) leaves core.cosocket_peeks() false, and
 * the transport falls back to waiting for a turn of the event loop.
 */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include "binding.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

/* ngx_http_lua_ffi_socket_tcp_hack_fd(u, fd, err, errlen): u's descriptor;
 * replaces it only when fd >= 0 (never here); -1 when u has no connection. */
typedef int (*hack_fd_fn)(void *u, int fd, unsigned char *err, size_t *errlen);

/* The function, looked up once (NULL: not in this process). */
static hack_fd_fn hack_fd(void) {
  static int looked;
  static hack_fd_fn fn;
  if (!looked) {
    looked = 1;
    void *sym = dlsym(RTLD_DEFAULT, "ngx_http_lua_ffi_socket_tcp_hack_fd");
    memcpy(&fn, &sym, sizeof fn); /* an object pointer to a function pointer, as POSIX allows */
  }
  return fn;
}

/** core.cosocket_peeks() → true when core.cosocket_stale can look at a
 * cosocket's connection in this process (inside nginx with an ngx_lua that
 * exports the descriptor), false elsewhere. */
static int l_cosocket_peeks(lua_State *L) {
  lua_pushboolean(L, hack_fd() != NULL);
  return 1;
}

/** core.cosocket_stale(sock) → false when the connected cosocket sock has
 * nothing waiting on its connection (it may carry a request); true when bytes
 * wait there or the server closed it (EOF or an error: it must not be used);
 * nil when it cannot tell (no such function, no connection). Never blocks. */
static int l_cosocket_stale(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  hack_fd_fn fn = hack_fd();
  lua_rawgeti(L, 1, 1); /* ngx_lua keeps the socket's state (u) at index 1 */
  void *u = lua_type(L, -1) == LUA_TUSERDATA ? lua_touserdata(L, -1) : NULL;
  if (!fn || !u) {
    lua_pushnil(L);
    return 1;
  }
  unsigned char err[128];
  size_t errlen = sizeof err;
  int fd = fn(u, -1, err, &errlen);
  if (fd < 0) {
    lua_pushnil(L);
    return 1;
  }
  char c;
  ssize_t n;
  do n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  lua_pushboolean(L, !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)));
  return 1;
}

/* Adds cosocket_peeks and cosocket_stale to the module table on the top of the stack. */
int hyp_cosock_open(lua_State *L) {
  lua_pushcfunction(L, l_cosocket_peeks);
  lua_setfield(L, -2, "cosocket_peeks");
  lua_pushcfunction(L, l_cosocket_stale);
  lua_setfield(L, -2, "cosocket_stale");
  return 0;
}
