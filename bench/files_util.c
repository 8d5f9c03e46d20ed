/*
 * bench/files_util.c — helpers of the "files" benchmark of `make bench`.
 *
 *   files_util gen PATH BYTES [SEED]
 *       writes BYTES pseudo-random bytes (splitmix64, incompressible like a
 *       scanned PDF, reproducible from SEED) to PATH in 1 MiB blocks; much
 *       faster than /dev/urandom on this kind of machine.
 *   files_util run PROGRAM [ARG...]
 *       runs PROGRAM (PATH searched), waits for it with wait4 and reports its
 *       peak resident set (ru_maxrss: the kernel's own high-water mark, the
 *       figure `/usr/bin/time -v` prints, without needing the Debian package
 *       `time`), its wall time and its CPU time.
 *
 * Output: one JSON line on stdout, last ({"ok":true,...} or {"ok":false,...});
 * the program's own stdout and stderr are passed through (redirect them with
 * its options, e.g. curl -o). Exit status: 0 when the JSON says ok (for run:
 * the program exited 0), else 1.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* wait4 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (1u << 20)

static double now_wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_s(struct timeval tv) {
  return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static int gen(const char *path, const char *bytes_s, const char *seed_s) {
  char *end;
  errno = 0;
  unsigned long long total = strtoull(bytes_s, &end, 10);
  if (errno || *end || !*bytes_s) {
    printf("{\"ok\":false,\"error\":\"BYTES must be a non-negative integer\"}\n");
    return 1;
  }
  uint64_t state = seed_s ? strtoull(seed_s, NULL, 10) : 1;
  uint64_t *buf = malloc(BLOCK);
  FILE *f = fopen(path, "wb");
  if (!buf || !f) {
    printf("{\"ok\":false,\"error\":\"cannot open %s: %s\"}\n", path, strerror(errno));
    free(buf);
    if (f) fclose(f);
    return 1;
  }
  double t0 = now_wall();
  unsigned long long left = total;
  int bad = 0;
  while (left > 0 && !bad) {
    for (size_t i = 0; i < BLOCK / sizeof *buf; i++) buf[i] = splitmix64(&state);
    size_t n = left < BLOCK ? (size_t)left : BLOCK;
    if (fwrite(buf, 1, n, f) != n) bad = 1;
    left -= n;
  }
  if (fclose(f) != 0) bad = 1;
  free(buf);
  if (bad) {
    printf("{\"ok\":false,\"error\":\"cannot write %s: %s\"}\n", path, strerror(errno));
    return 1;
  }
  printf("{\"ok\":true,\"bytes\":%llu,\"wall_s\":%.6f}\n", total, now_wall() - t0);
  return 0;
}

static int run(char **argv) {
  fflush(stdout);
  double t0 = now_wall();
  pid_t pid = fork();
  if (pid < 0) {
    printf("{\"ok\":false,\"error\":\"fork: %s\"}\n", strerror(errno));
    return 1;
  }
  if (pid == 0) {
    execvp(argv[0], argv);
    fprintf(stderr, "files_util: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  int status = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) {
      printf("{\"ok\":false,\"error\":\"wait4: %s\"}\n", strerror(errno));
      return 1;
    }
  }
  double wall = now_wall() - t0;
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  printf("{\"ok\":%s,\"exit\":%d,\"maxrss_kb\":%ld,\"wall_s\":%.6f,\"user_s\":%.6f,\"sys_s\":%.6f}\n",
         code == 0 ? "true" : "false", code, ru.ru_maxrss, wall, tv_s(ru.ru_utime), tv_s(ru.ru_stime));
  return code == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc >= 4 && argc <= 5 && strcmp(argv[1], "gen") == 0) return gen(argv[2], argv[3], argc == 5 ? argv[4] : NULL);
  if (argc >= 3 && strcmp(argv[1], "run") == 0) return run(argv + 2);
  fprintf(stderr, "usage: files_util gen PATH BYTES [SEED]\n       files_util run PROGRAM [ARG...]\n");
  return 2;
}
