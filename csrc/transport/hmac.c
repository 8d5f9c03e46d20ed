/*
 * transport/hmac.c — HMAC-SHA-256 and SHA-1 through libcrypto (see hmac.h).
 * The HMAC digest is wiped from the stack once it is written out.
 */
#include "hmac.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* Writes n bytes of md as hex into out (2n + 1 bytes). */
static void hex(const unsigned char *md, unsigned n, char *out) {
  static const char HEX[] = "0123456789abcdef";
  for (unsigned i = 0; i < n; i++) {
    out[2 * i] = HEX[md[i] >> 4];
    out[2 * i + 1] = HEX[md[i] & 15];
  }
  out[2 * n] = '\0';
}

/* See hmac.h. */
int hyp_sha1_hex(const void *msg, size_t msglen, char out[41]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  out[0] = '\0';
  if (!EVP_Digest(msg, msglen, md, &n, EVP_sha1(), NULL) || n != 20) return -1;
  hex(md, 20, out);
  return 0;
}

/* See hmac.h. */
int hyp_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen, char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  out[0] = '\0';
  if (keylen > INT_MAX) return -1;
  if (!HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, md, &n) || n != 32) return -1;
  hex(md, 32, out);
  OPENSSL_cleanse(md, sizeof md);
  return 0;
}
