/*
 * engine/urls.c — URL policy: https only (http to loopback), no user info, and
 * loopback decided by parsing the host as an address (see urls.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "urls.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

/* Host of an http(s) URL is loopback: "localhost", an IPv4 literal in
 * 127.0.0.0/8 or the IPv6 literal ::1 (or ::ffff:127.x.y.z) — decided by
 * parsing the address, so 127.999.999.999 or "127.0.0.1." (names that go to
 * DNS) are not. */
static int loopback_host(const char *host, size_t n) {
  char a[64];
  if (n == 9 && strncasecmp(host, "localhost", 9) == 0) return 1;
  if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
    struct in6_addr v6;
    if (n - 2 >= sizeof a) return 0;
    memcpy(a, host + 1, n - 2);
    a[n - 2] = '\0';
    if (inet_pton(AF_INET6, a, &v6) != 1) return 0;
    static const unsigned char one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(v6.s6_addr, one, 16) == 0 ||
           (memcmp(v6.s6_addr, mapped, 12) == 0 && v6.s6_addr[12] == 127);
  }
  struct in_addr v4;
  if (n >= sizeof a) return 0;
  memcpy(a, host, n);
  a[n] = '\0';
  return inet_pton(AF_INET, a, &v4) == 1 && ((const unsigned char *)&v4.s_addr)[0] == 127;
}

/* The host of an http(s) URL: *n bytes at the result ("[…]" kept), or NULL. */
static const char *url_host(const char *url, size_t *n) {
  const char *rest;
  if (strncasecmp(url, "https://", 8) == 0)
    rest = url + 8;
  else if (strncasecmp(url, "http://", 7) == 0)
    rest = url + 7;
  else
    return NULL;
  size_t auth = strcspn(rest, "/?#");
  if (rest[0] == '[') {
    const char *close = memchr(rest, ']', auth);
    *n = close ? (size_t)(close - rest) + 1 : auth;
  } else {
    *n = strcspn(rest, ":/?#");
  }
  return rest;
}

/* See urls.h. */
int hyp_loopback_url(const char *url) {
  size_t n;
  const char *host = url_host(url, &n);
  return host && loopback_host(host, n);
}

#define USERINFO "must not contain user info (credentials go in client_id/client_secret)"

/* See urls.h. */
int hyp_has_userinfo(const char *url) {
  const char *sep = strstr(url, "://");
  const char *auth = sep ? sep + 3 : url;
  size_t n = strcspn(auth, "/?#");
  return memchr(auth, '@', n) != NULL;
}

/* See urls.h. */
const char *hyp_check_url(const char *url) {
  if (hyp_has_userinfo(url)) return USERINFO;
  const char *rest;
  int https;
  if (strncasecmp(url, "https://", 8) == 0) {
    https = 1;
    rest = url + 8;
  } else if (strncasecmp(url, "http://", 7) == 0) {
    https = 0;
    rest = url + 7;
  } else {
    return "must start with https://";
  }
  size_t auth = strcspn(rest, "/?#");
  if (auth == 0) return "has no host";
  if (strpbrk(rest, "?#")) return "must not contain a query or fragment";
  if (strpbrk(url, " \t\r\n")) return "must not contain white space";
  if (!https && !hyp_loopback_url(url))
    return "must use https:// (plain http:// is allowed only to loopback hosts)";
  return NULL;
}


/* Appends n bytes of s to out (size bytes) at *used, keeping room for the NUL. */
static void put(char *out, size_t size, size_t *used, const char *s, size_t n) {
  if (*used + 1 >= size) return;
  if (n > size - 1 - *used) n = size - 1 - *used;
  memcpy(out + *used, s, n);
  *used += n;
}

/* See urls.h. */
size_t hyp_url_shown(const char *url, char *out, size_t size) {
  size_t used = 0;
  if (size == 0) return 0;
  /* the authority starts after the first "://" (as hyp_has_userinfo reads it) unless a
   * query or fragment starts before it */
  const char *sep = strstr(url, "://"), *auth = url;
  if (sep && strcspn(url, "?#") > (size_t)(sep - url)) {
    put(out, size, &used, url, (size_t)(sep - url) + 3);
    auth = sep + 3;
  }
  size_t alen = strcspn(auth, "/?#");
  const char *host = auth;
  for (const char *p = auth; p < auth + alen; p++)
    if (*p == '@') host = p + 1; /* user info ends at the last '@' of the authority */
  put(out, size, &used, host, (size_t)(auth + alen - host));
  const char *path = auth + alen;
  put(out, size, &used, path, strcspn(path, "?#"));
  out[used] = '\0';
  return used;
}
