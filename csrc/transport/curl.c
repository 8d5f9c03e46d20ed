/*
 * transport/curl.c — one attempt over libcurl (see curl.h).
 *
 * One easy handle per client, reset before every attempt, keeps the
 * keep-alive connections, DNS and TLS session caches between calls. TLS is
 * verified; only http and https are allowed; redirects are not followed;
 * loopback URLs never go through a proxy.
 * Bodies from files are streamed with their length known and reopened for
 * every attempt; responses for an `output` path are streamed into a
 * temporary file beside it and renamed into place only on a 2xx answer, so
 * the destination never holds half a download or an error body.
 * A request that is not idempotent goes on a fresh connection: libcurl
 * silently re-sends a request whose reused connection turns out dead, which
 * must not happen to an upload.
 * No callback ever raises: failures are recorded and reported in hyp_result.
 */
#define _POSIX_C_SOURCE 200809L
#include "curl.h"

#include "../engine/urls.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* the codes curl.h names for layers that do not include curl.h */
typedef char hyp_check_aborted[HYP_CURL_ABORTED == CURLE_ABORTED_BY_CALLBACK ? 1 : -1];
typedef char hyp_check_failed_init[HYP_CURL_FAILED_INIT == CURLE_FAILED_INIT ? 1 : -1];

#define ERROR_BODY_MAX (1u << 20) /* bytes of a non-2xx body kept in memory */

struct hyp_transport {
  CURL *easy;
  char errbuf[CURL_ERROR_SIZE];
  /* per attempt */
  hyp_result *res;
  FILE *in;                  /* body file */
  const hyp_outgoing *o;
  FILE *out;                 /* temporary output file, opened on the first 2xx byte */
  char *tmp_path;
  int out_errno;             /* write failure */
  int too_large;             /* an in-memory answer went over o->max_body */
  int in_errno;              /* read failure */
  hyp_progress_fn progress;
  void *progress_ud;
  int last_plain;            /* the previous attempt was a plain GET (see perform) */
  struct curl_slist *headers; /* of the last attempt, kept for the next one… */
  hyp_buf lines;             /* …while its lines (wiped when replaced: they hold the token) */
  int nlines, lines_memory;  /* and their count and body kind are the same */
};

/* Creates a transport with its libcurl handle. */
hyp_transport *hyp_transport_new(void) {
  hyp_transport *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->easy = curl_easy_init();
  if (!t->easy) {
    free(t);
    return NULL;
  }
  return t;
}

/* Closes connections and frees the transport. */
void hyp_transport_free(hyp_transport *t) {
  if (!t) return;
  if (t->easy) curl_easy_cleanup(t->easy);
  curl_slist_free_all(t->headers);
  hyp_buf_wipe(&t->lines);
  free(t);
}

/* Header callback: keeps "name: value" lines; a new status line starts over. */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  hyp_transport *t = ud;
  size_t len = size * n, l = len;
  while (l && (p[l - 1] == '\r' || p[l - 1] == '\n')) l--;
  if (l >= 5 && strncmp(p, "HTTP/", 5) == 0) {
    hyp_buf_reset(&t->res->headers);
    return len;
  }
  const char *colon = memchr(p, ':', l);
  if (!colon || colon == p) return len;
  const char *v = colon + 1, *end = p + l;
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
  if (hyp_header_add(&t->res->headers, p, (size_t)(colon - p), v, (size_t)(end - v))) return 0;
  return len;
}

/* Opens a temporary file beside the output path. */
static int open_output(hyp_transport *t) {
  size_t n = strlen(t->o->output_path) + 32;
  t->tmp_path = malloc(n);
  if (!t->tmp_path) {
    t->out_errno = ENOMEM;
    return -1;
  }
  snprintf(t->tmp_path, n, "%s.part-XXXXXX", t->o->output_path);
  int fd = mkstemp(t->tmp_path);
  if (fd >= 0) {
    /* mkstemp makes 0600; the destination gets what any new file would */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
  }
  if (fd < 0 || !(t->out = fdopen(fd, "wb"))) {
    t->out_errno = errno;
    if (fd >= 0) close(fd);
    free(t->tmp_path);
    t->tmp_path = NULL;
    return -1;
  }
  return 0;
}

/* Write callback: a 2xx body goes to the output file or memory (at most
 * o->max_body bytes, counted after decompression, else the transfer stops);
 * other bodies go to memory, truncated. */
static size_t on_write(char *p, size_t size, size_t n, void *ud) {
  hyp_transport *t = ud;
  size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  int ok = status >= 200 && status < 300;
  if (ok && t->o->output_path) {
    if (!t->out && open_output(t)) return 0;
    if (fwrite(p, 1, len, t->out) != len) {
      t->out_errno = errno ? errno : EIO;
      return 0;
    }
    t->res->body_in_file = 1;
    return len;
  }
  size_t max = t->o->max_body;
  if (!ok) {
    size_t keep = max && max < ERROR_BODY_MAX ? max : ERROR_BODY_MAX, have = t->res->body.len;
    if (have >= keep) return len;
    if (hyp_buf_add(&t->res->body, p, len < keep - have ? len : keep - have)) return 0;
    return len;
  }
  if (max && (t->res->body.len > max || len > max - t->res->body.len)) {
    t->too_large = 1;
    return 0;
  }
  if (hyp_buf_add(&t->res->body, p, len)) return 0;
  return len;
}

/* Read callback for file bodies. */
static size_t on_read(char *p, size_t size, size_t n, void *ud) {
  hyp_transport *t = ud;
  size_t got = fread(p, 1, size * n, t->in);
  if (got == 0 && ferror(t->in)) {
    t->in_errno = errno ? errno : EIO;
    return CURL_READFUNC_ABORT;
  }
  return got;
}

/* Seek callback: libcurl may rewind a file body (idempotent requests only). */
static int on_seek(void *ud, curl_off_t offset, int origin) {
  hyp_transport *t = ud;
  if (t->o->fresh) return CURL_SEEKFUNC_FAIL; /* never re-send a non-idempotent body */
  return fseeko(t->in, (off_t)offset, origin) == 0 ? CURL_SEEKFUNC_OK : CURL_SEEKFUNC_FAIL;
}

static int on_progress(void *ud, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln) {
  hyp_transport *t = ud;
  return t->progress(t->progress_ud, (int64_t)dlt, (int64_t)dln, (int64_t)ult, (int64_t)uln);
}

/* Sets the method and body options. */
static void set_body(hyp_transport *t, const hyp_outgoing *o) {
  CURL *h = t->easy;
  int has_body = o->body_kind != HYP_BODY_NONE;
  if (strcmp(o->method, "GET") == 0 && !has_body) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(o->method, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (!has_body && strcmp(o->method, "POST") != 0) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, o->method);
  } else {
    /* a body (or an empty POST): POST semantics, then the real method */
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    if (strcmp(o->method, "POST") != 0) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, o->method);
    if (o->body_kind == HYP_BODY_FILE) {
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_size);
      curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
      curl_easy_setopt(h, CURLOPT_READDATA, t);
      curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
      curl_easy_setopt(h, CURLOPT_SEEKDATA, t);
    } else {
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, o->body ? o->body : "");
    }
  }
}

/* The lines of o as a curl_slist: the one of the last attempt when its lines
 * are the same (most calls: the same token, user agent and accept), else a
 * new one that replaces it. NULL with *oom set on ENOMEM. */
static struct curl_slist *header_list(const hyp_outgoing *o, int *oom);

static struct curl_slist *cached_list(hyp_transport *t, const hyp_outgoing *o, int *oom) {
  size_t n = o->headers ? o->headers->len : 0;
  int memory = o->body_kind == HYP_BODY_MEMORY;
  if (t->headers && t->nlines == o->nheaders && t->lines_memory == memory && t->lines.len == n &&
      (n == 0 || memcmp(t->lines.data, o->headers->data, n) == 0))
    return t->headers;
  struct curl_slist *list = header_list(o, oom);
  if (*oom) {
    curl_slist_free_all(list);
    return NULL;
  }
  curl_slist_free_all(t->headers);
  hyp_buf_wipe(&t->lines);
  t->headers = NULL;
  if (n && hyp_buf_add(&t->lines, o->headers->data, n)) { /* no cache: built again next time */
    hyp_buf_wipe(&t->lines);
    t->nlines = -1;
  } else {
    t->nlines = o->nheaders;
  }
  t->lines_memory = memory;
  t->headers = list;
  return list;
}

/* Turns the "Name: value\0" lines into a curl_slist (NULL on ENOMEM). */
static struct curl_slist *header_list(const hyp_outgoing *o, int *oom) {
  struct curl_slist *list = NULL;
  const char *p = o->headers ? o->headers->data : NULL;
  for (int i = 0; p && i < o->nheaders; i++) {
    struct curl_slist *l = curl_slist_append(list, p);
    if (!l) {
      *oom = 1;
      break;
    }
    list = l;
    p += strlen(p) + 1;
  }
  /* libcurl adds "Expect: 100-continue" to large bodies; keep it for files
   * (the server can refuse before gigabytes move), drop it for memory bodies */
  if (!*oom && o->body_kind == HYP_BODY_MEMORY) {
    struct curl_slist *l = curl_slist_append(list, "Expect:");
    if (l) list = l;
  }
  return list;
}

/* Records a failure: io for local file problems, else from the libcurl code. */
static void fail_res(hyp_result *res, int code, int io, const char *msg) {
  res->failure = io ? HYP_F_IO : hyp_curl_failure(code);
  res->code = code;
  res->message = msg;
}

/* Sets every option of an attempt on a freshly reset handle. */
static void setup(hyp_transport *t, const hyp_outgoing *o, const hyp_config *opt,
                  struct curl_slist *headers, hyp_progress_fn progress) {
  CURL *h = t->easy;
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_URL, o->url);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
  if (!o->stream) curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  if (o->connect_timeout > 0)
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)ceil(o->connect_timeout * 1000));
  if (o->stream) {
    /* a file moves: abort when less than 1 byte/s flows for `timeout` s, and
     * whatever flows, once the call's deadline is reached */
    if (o->timeout > 0) {
      curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)ceil(o->timeout));
    }
    if (o->deadline > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)ceil(o->deadline * 1000));
  } else if (o->timeout > 0) {
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)ceil(o->timeout * 1000)); /* cut to the deadline */
  }
  if (o->fresh) curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
  if (opt->ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, opt->ca_file);
  if (opt->proxy) curl_easy_setopt(h, CURLOPT_PROXY, opt->proxy);
  /* loopback traffic (plain http is allowed there) never goes through a proxy,
   * whether it comes from the option or the environment */
  curl_easy_setopt(h, CURLOPT_NOPROXY, hyp_loopback_url(o->url) ? "*" : NULL);
  if (progress) {
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, t);
  }
  set_body(t, o);
}

/* See curl.h. */
int hyp_transport_begin(hyp_transport *t, const hyp_outgoing *o, const hyp_config *opt,
                        hyp_progress_fn progress, void *progress_ud, hyp_result *res) {
  char *msg = res->msgbuf;
  const size_t msgsize = sizeof res->msgbuf;
  CURL *h = t->easy;
  t->res = res;
  t->o = o;
  t->in = NULL;
  t->out = NULL;
  t->tmp_path = NULL;
  t->in_errno = t->out_errno = t->too_large = 0;
  t->errbuf[0] = '\0';
  t->progress = progress;
  t->progress_ud = progress_ud;

  if (o->body_kind == HYP_BODY_FILE) {
    t->in = fopen(o->body_path, "rb");
    if (!t->in) {
      snprintf(msg, msgsize, "cannot open body file \"%s\": %s", o->body_path, strerror(errno));
      fail_res(res, 0, 1, msg);
      return -1;
    }
  }
  int oom = 0;
  struct curl_slist *headers = cached_list(t, o, &oom);
  if (oom) {
    if (t->in) fclose(t->in);
    t->in = NULL;
    fail_res(res, CURLE_OUT_OF_MEMORY, 1, "out of memory");
    return -1;
  }

  /* A plain GET after a plain GET only changes the URL, headers and timeout:
   * skip the reset and the full set of options (a measurable share of a call). */
  int plain = strcmp(o->method, "GET") == 0 && o->body_kind == HYP_BODY_NONE && !o->output_path &&
              !o->fresh && !o->stream; /* t->progress may change: on_progress reads it per call */
  if (plain && t->last_plain) {
    curl_easy_setopt(h, CURLOPT_URL, o->url);
    curl_easy_setopt(h, CURLOPT_NOPROXY, hyp_loopback_url(o->url) ? "*" : NULL);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout > 0 ? (long)ceil(o->timeout * 1000) : 0L);
  } else {
    setup(t, o, opt, headers, progress);
  }
  t->last_plain = plain;
  return 0;
}

/* See curl.h. */
void hyp_transport_end(hyp_transport *t, int code, hyp_result *res) {
  char *msg = res->msgbuf;
  const size_t msgsize = sizeof res->msgbuf;
  CURL *h = t->easy;
  const hyp_outgoing *o = t->o;
  CURLcode rc = (CURLcode)code;
  if (t->in) fclose(t->in);
  t->in = NULL;

  long status = 0, request_size = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &request_size);
  res->sent = request_size > 0;
  double total = 0;
  curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &total);
  res->elapsed = total;

  if (t->out) {
    int bad = fflush(t->out) != 0 || fsync(fileno(t->out)) != 0;
    if (fclose(t->out) != 0) bad = 1;
    t->out = NULL;
    if (bad && !t->out_errno) t->out_errno = errno ? errno : EIO;
  }
  if (rc == CURLE_OK && t->o->output_path && status >= 200 && status < 300 && !t->out_errno) {
    if (!t->tmp_path && open_output(t) == 0) { /* an empty 2xx body: an empty file */
      fclose(t->out);
      t->out = NULL;
    }
    if (t->tmp_path && rename(t->tmp_path, t->o->output_path) != 0) t->out_errno = errno;
    if (!t->out_errno) {
      free(t->tmp_path);
      t->tmp_path = NULL;
      res->body_in_file = 1;
    }
  }
  if (t->tmp_path) {
    unlink(t->tmp_path);
    free(t->tmp_path);
    t->tmp_path = NULL;
    res->body_in_file = 0;
  }

  res->status = status; /* with a failure: the status line that had arrived, if any (err.outcome) */
  if (t->out_errno) {
    snprintf(msg, msgsize, "cannot write output file \"%s\": %s", o->output_path,
             strerror(t->out_errno));
    fail_res(res, rc == CURLE_OK ? CURLE_WRITE_ERROR : rc, 1, msg);
  } else if (t->too_large) {
    snprintf(msg, msgsize, "answer larger than max_body_size (%zu bytes)", o->max_body);
    fail_res(res, CURLE_FILESIZE_EXCEEDED, 0, msg);
  } else if (t->in_errno) {
    snprintf(msg, msgsize, "cannot read body file \"%s\": %s", o->body_path,
             strerror(t->in_errno));
    fail_res(res, rc, 1, msg);
  } else if (rc != CURLE_OK) {
    snprintf(msg, msgsize, "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
    fail_res(res, rc, 0, msg);
  }
}

/* See curl.h. HTTP/2 connections are left out: frames on an idle one (PING,
 * SETTINGS, WINDOW_UPDATE) are normal and libcurl reads them as such. */
int hyp_curl_kept_http1(void *easy) {
  long version = 0;
  curl_socket_t s = CURL_SOCKET_BAD;
  if (curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version) != CURLE_OK ||
      (version != CURL_HTTP_VERSION_1_0 && version != CURL_HTTP_VERSION_1_1) ||
      curl_easy_getinfo(easy, CURLINFO_ACTIVESOCKET, &s) != CURLE_OK)
    return -1;
  return s == CURL_SOCKET_BAD ? -1 : (int)s;
}

/* See curl.h. */
int hyp_curl_readable(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, 0) > 0;
}

/* Before a blocking attempt: an HTTP/1 connection the previous one left in
 * the handle's cache, idle since, is readable only when it holds bytes nobody
 * asked for (a second, unasked answer) or the server's close. libcurl 7.88
 * would reuse it and read those bytes as the next answer; shut down, it is
 * found dead and another connection is opened (libcurl closes the socket). */
static void drop_if_readable(CURL *h) {
  int s = hyp_curl_kept_http1(h);
  if (s >= 0 && hyp_curl_readable(s)) shutdown(s, SHUT_RDWR);
}

/* See curl.h. */
void hyp_transport_perform(hyp_transport *t, const hyp_outgoing *o, const hyp_config *opt,
                           hyp_progress_fn progress, void *progress_ud, hyp_result *res) {
  drop_if_readable(t->easy);
  if (hyp_transport_begin(t, o, opt, progress, progress_ud, res) != 0) return;
  hyp_transport_end(t, (int)curl_easy_perform(t->easy), res);
}

/* See curl.h. */
void *hyp_transport_handle(hyp_transport *t) { return t->easy; }

/* See curl.h. */
int hyp_curl_global_init(void) {
  static int ready = 0;
  if (!ready && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return -1;
  ready = 1;
  return 0;
}

/* See curl.h. */
const char *hyp_curl_version(void) { return curl_version_info(CURLVERSION_NOW)->version; }

/* See curl.h. */
const char *hyp_curl_strerror(int code) { return curl_easy_strerror((CURLcode)code); }

/* libcurl codes and the engine's failure classes, both ways (the first row of
 * a class is the code it stands for). */
static const struct {
  int code, failure;
} MAP[] = {{CURLE_COULDNT_RESOLVE_HOST, HYP_F_RESOLVE},  {CURLE_COULDNT_RESOLVE_PROXY, HYP_F_RESOLVE},
           {CURLE_COULDNT_CONNECT, HYP_F_CONNECT},       {CURLE_SSL_CONNECT_ERROR, HYP_F_TLS},
           {CURLE_PEER_FAILED_VERIFICATION, HYP_F_TLS_VERIFY}, {CURLE_SSL_CACERT_BADFILE, HYP_F_TLS_VERIFY},
           {CURLE_OPERATION_TIMEDOUT, HYP_F_TIMEOUT},    {CURLE_SEND_ERROR, HYP_F_SEND},
           {CURLE_SEND_FAIL_REWIND, HYP_F_SEND},         {CURLE_RECV_ERROR, HYP_F_RECV},
           {CURLE_HTTP2, HYP_F_RECV},                    {CURLE_HTTP2_STREAM, HYP_F_RECV},
           {CURLE_GOT_NOTHING, HYP_F_CLOSED},            {CURLE_PARTIAL_FILE, HYP_F_PARTIAL},
           {CURLE_FILESIZE_EXCEEDED, HYP_F_TOO_LARGE},   {CURLE_WRITE_ERROR, HYP_F_IO},
           {CURLE_READ_ERROR, HYP_F_IO},                 {CURLE_ABORTED_BY_CALLBACK, HYP_F_OTHER}};

/* See curl.h. */
int hyp_curl_failure(int code) {
  for (size_t i = 0; i < sizeof MAP / sizeof *MAP; i++)
    if (MAP[i].code == code) return MAP[i].failure;
  return HYP_F_OTHER;
}

/* See curl.h. */
int hyp_curl_code(int failure) {
  for (size_t i = 0; i < sizeof MAP / sizeof *MAP; i++)
    if (MAP[i].failure == failure) return MAP[i].code;
  return -1;
}
