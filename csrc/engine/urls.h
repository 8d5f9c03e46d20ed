/*
 * engine/urls.h — what the client accepts as a base, token or proxy URL, and
 * which hosts are loopback (parsed, never matched by prefix). Pure C99 + libc.
 */
#ifndef HYP_ENGINE_URLS_H
#define HYP_ENGINE_URLS_H

#include <stddef.h>

/* NULL when url is acceptable as a base or token URL (https, or http to a
 * loopback host; no user info, query, fragment or white space), else a static
 * reason. A URL with user info must never be echoed: see hyp_has_userinfo. */
const char *hyp_check_url(const char *url);
/* True when a URL (with or without "scheme://") has user info ("id:secret@"). */
int hyp_has_userinfo(const char *url);
/* True when the host of an http(s) URL is "localhost", an IPv4 literal in
 * 127.0.0.0/8 or ::1 (or ::ffff:127.x.y.z): such traffic never goes through a
 * proxy, and may use plain http. */
int hyp_loopback_url(const char *url);
/* Writes into out (size bytes, NUL-terminated, cut if too small) the parts of
 * url that a message may show: scheme, host (and port) and path — never user
 * info, a query or a fragment ("https://id:pw@h:8/v2?key=x#f" → "https://h:8/v2").
 * strlen(url) + 1 bytes always suffice. Returns the length written. */
size_t hyp_url_shown(const char *url, char *out, size_t size);

#endif
