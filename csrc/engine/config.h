/*
 * engine/config.h — a client's settings as the engine and the transports use
 * them: plain values, checked and defaulted by the binding (binding/options.c,
 * the one place that documents every option). Pure C99.
 */
#ifndef HYP_ENGINE_CONFIG_H
#define HYP_ENGINE_CONFIG_H

#include <stddef.h>

/* Ranges checked before any number is cast (client and per-call options). */
#define HYP_MAX_SECONDS 604800.0 /* durations: 7 days (fits libcurl's long milliseconds) */
#define HYP_MAX_RETRIES 100

typedef struct hyp_config {
  char *client_id, *client_secret;
  char *base_url;          /* no trailing slash */
  char *token_url;
  char *scope;             /* space-separated or NULL */
  char *user_agent;        /* the full User-Agent value */
  char *ca_file, *proxy;
  double timeout, connect_timeout, token_timeout;
  double deadline;         /* whole call; 0 = none */
  int max_retries;
  double backoff_base, backoff_cap, max_wait;
  int throttle;
  size_t max_body_size;    /* bytes of an answer held in memory (after decompression) */
  /* which callbacks exist: the engine asks its driver to run them */
  int has_cache, has_cache_release, has_on_request, has_on_response;
  int has_store;           /* a shared store paces the requests (ACQUIRE) */
} hyp_config;

/* Frees the strings (the secret wiped first) and zeroes the config. */
void hyp_config_free(hyp_config *c);

#endif
