/*
 * binding/os.c — what the engine leaves to its drivers: the wall clock,
 * sleeping (interruptible by SIGINT in the standalone interpreters), a
 * random seed and the umask; and waiting for a stop signal (the `hypatos
 * serve` command).
 */
#define _POSIX_C_SOURCE 200809L
#include "binding.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

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

#if LUA_VERSION_NUM < 502
static const char MAIN_KEY = 'M'; /* registry (Lua 5.1, which keeps no main thread there) */
#endif

/* See binding.h. */
void hyp_os_open(lua_State *L) {
#if LUA_VERSION_NUM < 502
  if (lua_pushthread(L)) { /* opened on the main thread (as `require` at the top level is) */
    lua_pushlightuserdata(L, (void *)&MAIN_KEY);
    lua_insert(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
  } else {
    lua_pop(L, 1);
  }
#else
  (void)L;
#endif
}

/* The state's main thread (L itself when it is not known). */
static lua_State *main_thread(lua_State *L) {
#if LUA_VERSION_NUM >= 502
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
#else
  lua_pushlightuserdata(L, (void *)&MAIN_KEY);
  lua_rawget(L, LUA_REGISTRYINDEX);
#endif
  lua_State *M = lua_tothread(L, -1);
  lua_pop(L, 1);
  return M ? M : L;
}

/* True when thread T carries the hook of the interpreter's SIGINT handler. */
static int sigint_hook(lua_State *T) {
  const int want = LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT;
  return lua_gethook(T) != NULL && lua_gethookcount(T) == 1 && (lua_gethookmask(T) & want) == want;
}

/* True when the standalone interpreter (lua, luajit) was sent SIGINT: its
 * handler sets a hook with call, return and count (count 1) masks (lua 5.4
 * adds the line mask) on the main thread, which fires as soon as Lua code runs
 * there again. C code that blocks checks this to stop early, in a coroutine too
 * (PUC Lua keeps hooks per thread; LuaJIT's are global). */
int hyp_interrupted(lua_State *L) {
  if (sigint_hook(L)) return 1;
  lua_State *M = main_thread(L);
  return M != L && sigint_hook(M);
}

/* Raises "hypatos: interrupted" (that string alone) after hyp_interrupted saw
 * SIGINT. The interpreter's hook is removed first, as its own handler of the
 * hook would: left in place, it raised "interrupted!" at the first Lua
 * instruction after ours was caught, so a pcall around a call could not catch
 * the interruption (lua.c and luajit.c set SIGINT back to its default when they
 * set the hook: a second Ctrl-C still ends the process). */
int hyp_interrupt_error(lua_State *L) {
  lua_State *M = main_thread(L);
  if (M != L) lua_sethook(M, NULL, 0, 0);
  lua_sethook(L, NULL, 0, 0);
  lua_pushliteral(L, "hypatos: interrupted"); /* no position: err == "hypatos: interrupted" */
  return lua_error(L);
}

/* Blocks SIGINT, SIGTERM and SIGHUP in this thread, waits until one of them
 * arrives (taking it, so no handler runs), restores the previous mask and
 * returns its name ("INT", "TERM", "HUP"); NULL when the mask cannot be
 * changed. For a foreground process that only waits to be stopped (the
 * command line's `serve`). */
const char *hyp_wait_signal(void) {
  sigset_t set, old;
  int sig = -1;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  if (sigprocmask(SIG_BLOCK, &set, &old) != 0) return NULL;
  if (sigwait(&set, &sig) != 0) sig = -1;
  sigprocmask(SIG_SETMASK, &old, NULL);
  return sig == SIGINT ? "INT" : sig == SIGTERM ? "TERM" : sig == SIGHUP ? "HUP" : NULL;
}

/* The process's umask without changing it (set-and-restore would race with
 * other threads: no umask games), from the "Umask:" line of /proc/self/status
 * (Linux 4.7+); -1 when it cannot be read. */
int hyp_umask(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  int mask = -1;
  while (fgets(line, sizeof line, f)) {
    unsigned int m;
    if (sscanf(line, "Umask: %o", &m) == 1) {
      mask = (int)(m & 0777);
      break;
    }
  }
  fclose(f);
  return mask;
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
