/*
 * transport/hmac.c — HMAC-SHA-256 through libcrypto (see hmac.h). The digest
 * is wiped from the stack once it is written out.
 */
#include "hmac.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* See hmac.h. */
int hyp_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen, char out[65]) {
  static const char HEX[] = "0123456789abcdef";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  out[0] = '\0';
  if (keylen > INT_MAX) return -1;
  if (!HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, md, &n) || n != 32) return -1;
  for (unsigned i = 0; i < 32; i++) {
    out[2 * i] = HEX[md[i] >> 4];
    out[2 * i + 1] = HEX[md[i] & 15];
  }
  out[64] = '\0';
  OPENSSL_cleanse(md, sizeof md);
  return 0;
}
