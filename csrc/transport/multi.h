/*
 * transport/multi.h — many attempts at once on one thread: a libcurl multi
 * handle over transports (transport/curl.h). Connections, DNS and TLS
 * sessions are shared by its transfers. Includes curl.h, never lua.h.
 */
#ifndef HYP_TRANSPORT_MULTI_H
#define HYP_TRANSPORT_MULTI_H

#include "curl.h"

typedef struct hyp_multi hyp_multi;

hyp_multi *hyp_multi_new(void);                                  /* NULL on failure */
void hyp_multi_free(hyp_multi *m);                               /* its transfers must be removed first */
/* Adds the transfer prepared by hyp_transport_begin; ud comes back from
 * hyp_multi_done. 0 | -1 (libcurl refused it). */
int hyp_multi_add(hyp_multi *m, hyp_transport *t, void *ud);
/* Takes a transfer out (aborting it if it runs). */
void hyp_multi_remove(hyp_multi *m, hyp_transport *t);
/* Moves the transfers on as far as they go without waiting. */
void hyp_multi_perform(hyp_multi *m);
/* Waits at most ms milliseconds for activity on the transfers. */
void hyp_multi_poll(hyp_multi *m, int ms);
/* The ud of a transfer that ended (taken out of the multi, its libcurl code
 * in *code), or NULL when none is left to report. */
void *hyp_multi_done(hyp_multi *m, int *code);

#endif
