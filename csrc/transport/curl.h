/*
 * transport/curl.h — one attempt over libcurl: the blocking transport of
 * plain-Lua calls, and each transfer of a multi handle (transport/multi.h).
 * Includes curl.h, never lua.h. Failures are mapped onto the engine's own
 * classes (HYP_F_*); the libcurl code is kept for err.code.
 */
#ifndef HYP_TRANSPORT_CURL_H
#define HYP_TRANSPORT_CURL_H

#include <stdint.h>

#include "../engine/engine.h"

typedef struct hyp_transport hyp_transport;

/* A progress callback: return non-zero to abort the transfer. It must not
 * raise or longjmp through libcurl. */
typedef int (*hyp_progress_fn)(void *ud, int64_t dltotal, int64_t dlnow, int64_t ultotal, int64_t ulnow);

/* Initialises libcurl once per process (0 | -1). */
int hyp_curl_global_init(void);
hyp_transport *hyp_transport_new(void);                          /* NULL on failure */
void hyp_transport_free(hyp_transport *t);                       /* closes its connections */
/* Performs one attempt of o (ca_file and proxy from cfg). res must be reset
 * by the caller; it is filled either with an HTTP answer or a failure. */
void hyp_transport_perform(hyp_transport *t, const hyp_outgoing *o, const hyp_config *cfg,
                           hyp_progress_fn progress, void *progress_ud, hyp_result *res);
/* The same attempt in two halves, for a multi handle: begin sets the easy
 * handle up (0), or fills res with a failure before anything is sent (-1);
 * once libcurl reports the transfer done with code, end fills res. o must
 * stay valid in between. */
int hyp_transport_begin(hyp_transport *t, const hyp_outgoing *o, const hyp_config *cfg,
                        hyp_progress_fn progress, void *progress_ud, hyp_result *res);
void hyp_transport_end(hyp_transport *t, int code, hyp_result *res);
void *hyp_transport_handle(hyp_transport *t);                   /* the CURL easy handle */
#define HYP_CURL_ABORTED 42     /* CURLE_ABORTED_BY_CALLBACK: end an attempt aborted by its owner */
#define HYP_CURL_FAILED_INIT 2  /* CURLE_FAILED_INIT: end an attempt libcurl would not start */

/* The socket of the HTTP/1 connection the last transfer of this easy handle
 * left in its cache (the multi's, while the handle is in one), or -1 (none,
 * closed, or HTTP/2). */
int hyp_curl_kept_http1(void *easy);
/* 1 when the socket has something to read now (bytes, or the peer's close). */
int hyp_curl_readable(int fd);
const char *hyp_curl_version(void);                              /* "7.88.1" */
/* The engine's failure class of a libcurl code, and the libcurl code a
 * failure class stands for (for drivers that name their failures). */
int hyp_curl_failure(int code);
int hyp_curl_code(int failure);
const char *hyp_curl_strerror(int code);

#endif
