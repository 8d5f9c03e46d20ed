/*
 * binding/tmpfile.c — hypatos.TmpFile: the temporary file of a download made by
 * a driver written in Lua (the cosocket driver), the way transport/curl.c makes
 * its own: created beside the destination by mkstemp ("<dest>.part-XXXXXX":
 * O_CREAT | O_EXCL, a random name, mode 0600 while it is written, so neither a
 * planted symlink nor a guessed name can redirect it), then renamed into place
 * by commit (with the mode any new file gets: 0666 less the umask) or removed
 * by abort, close, garbage collection or <close> — one idempotent destructor.
 *
 *   local f, err = core.tmpfile("/data/out.pdf")   -- nil, message when it cannot be created
 *   f:write(bytes)                                 -- true | nil, message
 *   f:commit([private])                            -- true | nil, message (the file is gone then);
 *                                                  -- private: it stays 0600 (a token, say)
 *   f:abort()                                      -- idempotent
 */
#define _POSIX_C_SOURCE 200809L
#include "binding.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HYP_TMPFILE_MT "hypatos.TmpFile"

typedef struct tmpfile_ud {
  FILE *f;     /* open while being written */
  char *path;  /* the temporary file; NULL once committed or removed */
  char *dest;  /* where commit puts it */
} tmpfile_ud;

/* Closes and frees everything; removes the temporary file unless keep. Idempotent. */
static void release(tmpfile_ud *t, int keep) {
  if (t->f) fclose(t->f);
  t->f = NULL;
  if (t->path && !keep) unlink(t->path);
  free(t->path);
  t->path = NULL;
  free(t->dest);
  t->dest = NULL;
}

static tmpfile_ud *check_open(lua_State *L) {
  tmpfile_ud *t = luaL_checkudata(L, 1, HYP_TMPFILE_MT);
  if (!t->f) luaL_error(L, "hypatos.TmpFile is closed");
  return t;
}

/* Pushes nil and "<what>: <strerror(err)>"; returns 2. */
static int fail(lua_State *L, const char *what, int err) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, strerror(err));
  return 2;
}

/** core.tmpfile(dest) → a hypatos.TmpFile beside dest ("<dest>.part-XXXXXX",
 * created exclusively with mode 0600), or nil and "<dest>.part-XXXXXX: <why>". */
static int l_tmpfile(lua_State *L) {
  size_t n;
  const char *dest = luaL_checklstring(L, 1, &n);
  if (strlen(dest) != n) return luaL_argerror(L, 1, "a path without NUL bytes expected");
  tmpfile_ud *t = HYP_NEWUSERDATA(L, sizeof *t);
  memset(t, 0, sizeof *t); /* zeroed and given its metatable before anything is acquired */
  luaL_setmetatable(L, HYP_TMPFILE_MT);
  t->dest = hyp_strdup(dest);
  t->path = malloc(n + sizeof ".part-XXXXXX");
  if (!t->dest || !t->path) {
    release(t, 0);
    return luaL_error(L, "hypatos.tmpfile: out of memory");
  }
  snprintf(t->path, n + sizeof ".part-XXXXXX", "%s.part-XXXXXX", dest);
  int fd = mkstemp(t->path);
  if (fd < 0) {
    int err = errno;
    lua_pushfstring(L, "%s.part-XXXXXX", dest);
    free(t->path);
    t->path = NULL; /* nothing to remove */
    release(t, 0);
    return fail(L, lua_tostring(L, -1), err);
  }
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  if (!(t->f = fdopen(fd, "wb"))) {
    int err = errno;
    close(fd);
    release(t, 0);
    return fail(L, "cannot write a temporary file", err);
  }
  return 1;
}

/** tmpfile:write(data) → true, or nil and a message (the file stays open:
 * abort it). */
static int tmp_write(lua_State *L) {
  tmpfile_ud *t = check_open(L);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  errno = 0;
  if (n && fwrite(s, 1, n, t->f) != n) return fail(L, "cannot write output file", errno ? errno : EIO);
  lua_pushboolean(L, 1);
  return 1;
}

/** tmpfile:commit([private]) → true once the data is in place at dest
 * (flushed, given the mode a new file gets — or kept at 0600 when private is
 * true, for a secret —, renamed), or nil and a message (the temporary file is
 * removed either way). */
static int tmp_commit(lua_State *L) {
  tmpfile_ud *t = check_open(L);
  int private = lua_toboolean(L, 2);
  int err = 0;
  if (fflush(t->f) != 0 || ferror(t->f)) err = errno ? errno : EIO;
  int mask = err || private ? -1 : hyp_umask();
  if (mask >= 0 && fchmod(fileno(t->f), (mode_t)(0666 & ~mask)) != 0) err = errno;
  FILE *f = t->f;
  t->f = NULL;
  if (fclose(f) != 0 && !err) err = errno ? errno : EIO;
  if (!err && rename(t->path, t->dest) != 0) err = errno;
  release(t, !err);
  if (err) return fail(L, "cannot write output file", err);
  lua_pushboolean(L, 1);
  return 1;
}

/** tmpfile:abort() — closes and removes the temporary file; idempotent. The
 * one destructor: also __gc and __close. */
static int tmp_abort(lua_State *L) {
  release(luaL_checkudata(L, 1, HYP_TMPFILE_MT), 0);
  return 0;
}

/** tmpfile:path() → the temporary file's path, or nil once committed or aborted. */
static int tmp_path(lua_State *L) {
  tmpfile_ud *t = luaL_checkudata(L, 1, HYP_TMPFILE_MT);
  if (t->path) lua_pushstring(L, t->path);
  else lua_pushnil(L);
  return 1;
}

/* See binding.h. */
int hyp_tmpfile_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"write", tmp_write}, {"commit", tmp_commit},
                                     {"abort", tmp_abort}, {"path", tmp_path},
                                     {NULL, NULL}};
  luaL_newmetatable(L, HYP_TMPFILE_MT);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, tmp_abort);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, tmp_abort);
  lua_setfield(L, -2, "__close");
  lua_pushliteral(L, HYP_TMPFILE_MT);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_tmpfile);
  lua_setfield(L, -2, "tmpfile");
  return 0;
}
