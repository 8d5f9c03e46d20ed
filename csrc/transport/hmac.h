/*
 * transport/hmac.h — HMAC-SHA-256 from OpenSSL's libcrypto: the keyed hashes
 * that bind a token cache (or shared store) entry to the credentials it was
 * fetched with, without the secret ever appearing in a key. Never includes
 * lua.h.
 */
#ifndef HYP_TRANSPORT_HMAC_H
#define HYP_TRANSPORT_HMAC_H

#include <stddef.h>

/* HMAC-SHA-256 of msg under key, as 64 lower-case hex digits and a NUL in
 * out. Returns 0, or -1 when libcrypto fails (out is then empty). */
int hyp_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen, char out[65]);

#endif
