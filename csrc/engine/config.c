/*
 * engine/config.c — releasing a client's settings (see config.h).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* See config.h. */
void hyp_config_free(hyp_config *c) {
  hyp_free_secret(&c->client_secret);
  free(c->client_id);
  free(c->base_url);
  free(c->token_url);
  free(c->scope);
  free(c->user_agent);
  free(c->ca_file);
  free(c->proxy);
  memset(c, 0, sizeof *c);
}
