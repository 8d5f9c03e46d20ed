/*
 * bench/raw_get.c — the baseline of `make bench`: N GET calls with libcurl
 * used directly, on one easy handle and one keep-alive connection.
 *
 *   HYPATOS_BENCH_TOKEN=<access token> raw_get --url URL --calls N
 *       [--warmup W] [--user-agent UA] [--per-call-setup] [--cjson]
 *   raw_get --version
 *
 * What it does, per call: GET URL with the same request headers hypatos sends
 * (Authorization: Bearer <token>, User-Agent, Accept: application/json; libcurl
 * adds Host and, with ACCEPT_ENCODING "", Accept-Encoding), the body appended
 * to one reused buffer and then dropped, libcurl's result and the status (200)
 * checked. The libcurl options that cost something are the ones
 * csrc/transport.c sets for a non-streamed GET: http/https only, PATH_AS_IS,
 * NOSIGNAL, TCP keep-alive probes, an error buffer, ACCEPT_ENCODING "",
 * CONNECTTIMEOUT_MS 10000 and TIMEOUT_MS 60000 (hypatos' defaults), HTTPGET.
 *
 * What it does not do: no header callback (hypatos keeps every response
 * header and reads the rate-limit ones), no JSON decoding, no token logic,
 * no retry decisions, no Lua. By default the options are set once and the
 * handle is reused as is (the plain way to use libcurl); --per-call-setup
 * instead does what transport.c does before every attempt: curl_easy_reset,
 * a fresh header curl_slist, every option set again — to measure that cost
 * apart from the rest of hypatos.
 *
 * Built with -DRAW_GET_LUA and linked with a Lua (lua5.4 or LuaJIT; `make bench`
 * builds build/bench/raw_get_cjson and raw_get_cjson_jit), --cjson also decodes
 * every body with lua-cjson: a Lua state opened once, cjson.decode called on the
 * body as a Lua string, the user's "id" checked to be a string, the value left
 * to the VM's garbage collector — the cost of the Lua-cURL + cjson loop a user
 * would write, less the binding's own (the Lua loop, the write callback into
 * Lua, table.concat): a faster peer than any Lua binding of libcurl.
 *
 * The W warm-up calls are not timed. Output: one JSON line on stdout with the
 * wall time (CLOCK_MONOTONIC) and this process's CPU time (getrusage
 * RUSAGE_SELF, user + sys) spent in the N timed calls. Exit status 1 on any
 * failure (a libcurl error, a status other than 200, an empty body).
 */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#ifdef RAW_GET_LUA
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
static lua_State *L;  /* --cjson: the Lua state; cjson.decode at stack index 1 */
#endif

typedef struct {
  char *data;
  size_t len, cap;
} buffer;

typedef struct {
  const char *url;
  const char *token;
  const char *user_agent;
  long calls;
  long warmup;
  int per_call_setup;
  int cjson;
} config;

static size_t on_write(char *p, size_t size, size_t n, void *ud) {
  buffer *b = ud;
  size_t len = size * n;
  if (b->len + len > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + len) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) return 0;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, len);
  b->len += len;
  return len;
}

static double now_wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void cpu_times(double *user, double *sys) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
  *sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static struct curl_slist *make_headers(const config *cfg) {
  static char auth[4096], ua[1024];
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", cfg->token);
  snprintf(ua, sizeof ua, "User-Agent: %s", cfg->user_agent);
  struct curl_slist *l = curl_slist_append(NULL, auth);
  if (l) l = curl_slist_append(l, ua);
  if (l) l = curl_slist_append(l, "Accept: application/json");
  if (!l) {
    fprintf(stderr, "raw_get: out of memory\n");
    exit(1);
  }
  return l;
}

static void set_options(CURL *h, const config *cfg, struct curl_slist *headers, buffer *body,
                        char *errbuf) {
  curl_easy_setopt(h, CURLOPT_URL, cfg->url);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
  curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
}

/* Runs n calls; returns the body bytes received, exits on a failure. */
static long long run_calls(CURL *h, const config *cfg, struct curl_slist **headers, buffer *body,
                           char *errbuf, long n, long *connects, const char *phase) {
  long long bytes = 0;
  for (long i = 0; i < n; i++) {
    if (cfg->per_call_setup) {
      curl_easy_reset(h);
      curl_slist_free_all(*headers);
      *headers = make_headers(cfg);
      set_options(h, cfg, *headers, body, errbuf);
    }
    body->len = 0;
    errbuf[0] = '\0';
    CURLcode rc = curl_easy_perform(h);
    long status = 0, nc = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &nc);
    if (rc != CURLE_OK || status != 200 || body->len == 0) {
      printf("{\"impl\":\"raw\",\"ok\":false,\"phase\":\"%s\",\"call\":%ld,\"status\":%ld,"
             "\"curl_code\":%d}\n", phase, i + 1, status, (int)rc);
      fprintf(stderr, "raw_get: %s call %ld: %s (HTTP %ld, %zu body bytes)\n", phase, i + 1,
              rc != CURLE_OK ? (errbuf[0] ? errbuf : curl_easy_strerror(rc)) : "bad answer",
              status, body->len);
      exit(1);
    }
#ifdef RAW_GET_LUA
    if (cfg->cjson) {
      lua_pushvalue(L, 1);
      lua_pushlstring(L, body->data, body->len);
      if (lua_pcall(L, 1, 1, 0) != 0 || !lua_istable(L, -1)) {
        fprintf(stderr, "raw_get: %s call %ld: cjson.decode: %s\n", phase, i + 1,
                lua_isstring(L, -1) ? lua_tostring(L, -1) : "not an object");
        exit(1);
      }
      lua_getfield(L, -1, "id");
      if (lua_type(L, -1) != LUA_TSTRING) {
        fprintf(stderr, "raw_get: %s call %ld: the answer has no \"id\"\n", phase, i + 1);
        exit(1);
      }
      lua_settop(L, 1);
    }
#endif
    *connects += nc;
    bytes += (long long)body->len;
  }
  return bytes;
}

static void usage(void) {
  fprintf(stderr, "usage: HYPATOS_BENCH_TOKEN=... raw_get --url URL --calls N [--warmup W]"
                  " [--user-agent UA] [--per-call-setup] [--cjson]\n       raw_get --version\n");
  exit(2);
}

int main(int argc, char **argv) {
  config cfg = {NULL, getenv("HYPATOS_BENCH_TOKEN"), NULL, 1000, 100, 0, 0};
  char ua_default[128];
  snprintf(ua_default, sizeof ua_default, "hypatos-bench-raw (libcurl/%s)",
           curl_version_info(CURLVERSION_NOW)->version);
  cfg.user_agent = ua_default;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--version") == 0) {
      const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
      printf("{\"libcurl\":\"%s\",\"ssl\":\"%s\"}\n", v->version,
             v->ssl_version ? v->ssl_version : "");
      return 0;
    } else if (strcmp(a, "--per-call-setup") == 0) {
      cfg.per_call_setup = 1;
#ifdef RAW_GET_LUA
    } else if (strcmp(a, "--cjson") == 0) {
      cfg.cjson = 1;
#endif
    } else if (i + 1 < argc && strcmp(a, "--url") == 0) {
      cfg.url = argv[++i];
    } else if (i + 1 < argc && strcmp(a, "--calls") == 0) {
      cfg.calls = strtol(argv[++i], NULL, 10);
    } else if (i + 1 < argc && strcmp(a, "--warmup") == 0) {
      cfg.warmup = strtol(argv[++i], NULL, 10);
    } else if (i + 1 < argc && strcmp(a, "--user-agent") == 0) {
      cfg.user_agent = argv[++i];
    } else {
      usage();
    }
  }
  if (!cfg.url || !cfg.token || !cfg.token[0] || cfg.calls < 1 || cfg.warmup < 0) usage();

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(stderr, "raw_get: curl_global_init failed\n");
    return 1;
  }
  CURL *h = curl_easy_init();
  if (!h) {
    fprintf(stderr, "raw_get: curl_easy_init failed\n");
    return 1;
  }
  char errbuf[CURL_ERROR_SIZE];
  buffer body = {NULL, 0, 0};
  struct curl_slist *headers = make_headers(&cfg);
  set_options(h, &cfg, headers, &body, errbuf);

#ifdef RAW_GET_LUA
  if (cfg.cjson) {
    L = luaL_newstate();
    if (!L) {
      fprintf(stderr, "raw_get: luaL_newstate failed\n");
      return 1;
    }
    luaL_openlibs(L);
    lua_getglobal(L, "require");
    lua_pushstring(L, "cjson");
    if (lua_pcall(L, 1, 1, 0) != 0) {
      fprintf(stderr, "raw_get: require \"cjson\": %s\n", lua_tostring(L, -1));
      return 1;
    }
    lua_getfield(L, -1, "decode");
    lua_replace(L, 1);
    lua_settop(L, 1);
  }
#endif

  long connects = 0;
  run_calls(h, &cfg, &headers, &body, errbuf, cfg.warmup, &connects, "warm-up");

  connects = 0;
  double u0, s0, u1, s1;
  cpu_times(&u0, &s0);
  double t0 = now_wall();
  long long bytes = run_calls(h, &cfg, &headers, &body, errbuf, cfg.calls, &connects, "timed");
  double t1 = now_wall();
  cpu_times(&u1, &s1);

  printf("{\"impl\":\"raw\",\"ok\":true,\"cjson\":%s,\"calls\":%ld,\"warmup\":%ld,\"per_call_setup\":%s,"
         "\"wall_s\":%.6f,\"cpu_s\":%.6f,\"user_s\":%.6f,\"sys_s\":%.6f,"
         "\"body_bytes\":%lld,\"new_connections\":%ld,\"libcurl\":\"%s\"}\n",
         cfg.cjson ? "true" : "false", cfg.calls, cfg.warmup, cfg.per_call_setup ? "true" : "false", t1 - t0,
         (u1 - u0) + (s1 - s0), u1 - u0, s1 - s0, bytes, connects,
         curl_version_info(CURLVERSION_NOW)->version);

#ifdef RAW_GET_LUA
  if (L) lua_close(L);
#endif
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  free(body.data);
  curl_global_cleanup();
  return 0;
}
