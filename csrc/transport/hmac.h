/*
 * transport/hmac.h — hashes from OpenSSL's libcrypto: the HMAC-SHA-256 that
 * binds a token cache (or shared store) entry to the credentials it was
 * fetched with, without the secret ever appearing in a key; the SHA-1 Redis
 * names a script by. Never includes lua.h.
 */
#ifndef HYP_TRANSPORT_HMAC_H
#define HYP_TRANSPORT_HMAC_H

#include <stddef.h>

/* HMAC-SHA-256 of msg under key, as 64 lower-case hex digits and a NUL in
 * out. Returns 0, or -1 when libcrypto fails (out is then empty). */
int hyp_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen, char out[65]);
/* SHA-1 of msg (the name Redis gives a script: EVALSHA), as 40 lower-case
 * hex digits and a NUL in out. Returns 0, or -1 (out is then empty). */
int hyp_sha1_hex(const void *msg, size_t msglen, char out[41]);

#endif
