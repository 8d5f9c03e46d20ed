/*
 * transport/multi.c — a libcurl multi handle over transports (see multi.h).
 */
#include "multi.h"

#include <curl/curl.h>
#include <stdlib.h>

struct hyp_multi {
  CURLM *m;
};

/* See multi.h. */
hyp_multi *hyp_multi_new(void) {
  hyp_multi *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->m = curl_multi_init();
  if (!m->m) {
    free(m);
    return NULL;
  }
  return m;
}

/* See multi.h. */
void hyp_multi_free(hyp_multi *m) {
  if (!m) return;
  curl_multi_cleanup(m->m);
  free(m);
}

/* See multi.h. */
int hyp_multi_add(hyp_multi *m, hyp_transport *t, void *ud) {
  CURL *e = hyp_transport_handle(t);
  curl_easy_setopt(e, CURLOPT_PRIVATE, ud);
  return curl_multi_add_handle(m->m, e) == CURLM_OK ? 0 : -1;
}

/* See multi.h. */
void hyp_multi_remove(hyp_multi *m, hyp_transport *t) {
  curl_multi_remove_handle(m->m, hyp_transport_handle(t));
}

/* See multi.h. */
void hyp_multi_perform(hyp_multi *m) {
  int running = 0;
  curl_multi_perform(m->m, &running);
}

/* See multi.h. */
void hyp_multi_poll(hyp_multi *m, int ms) { curl_multi_poll(m->m, NULL, 0, ms, NULL); }

/* See multi.h. */
void *hyp_multi_done(hyp_multi *m, int *code) {
  int queued;
  CURLMsg *msg;
  while ((msg = curl_multi_info_read(m->m, &queued))) {
    if (msg->msg != CURLMSG_DONE) continue;
    void *ud = NULL;
    CURL *e = msg->easy_handle;
    *code = (int)msg->data.result;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&ud);
    curl_multi_remove_handle(m->m, e);
    if (ud) return ud;
  }
  return NULL;
}
