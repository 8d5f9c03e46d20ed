/*
 * engine/tokjson.h — reads the JSON of a token answer (RFC 6749 §5.1) without
 * a Lua state: the top-level object's access_token, token_type and scope
 * (strings) and expires_in (a number). Every other member is checked to be
 * well-formed JSON and skipped. Pure C99 + libc.
 */
#ifndef HYP_ENGINE_TOKJSON_H
#define HYP_ENGINE_TOKJSON_H

#include <stddef.h>

/* The members found; strings are decoded (escapes resolved, may hold NUL),
 * owned here, NULL when absent or not a string. */
typedef struct hyp_tokfields {
  char *access_token, *token_type, *scope;
  size_t access_len, type_len, scope_len;
  double expires_in;
  int has_expires_in;      /* expires_in was a number */
} hyp_tokfields;

/* Parses the n bytes at s. Returns 0, or -1 with *why = "is not valid JSON"
 * or "is not a JSON object" (static text). A repeated member: the last wins. */
int hyp_tokjson_parse(const char *s, size_t n, hyp_tokfields *f, const char **why);
/* Frees the strings (the access token wiped first). */
void hyp_tokfields_free(hyp_tokfields *f);

#endif
