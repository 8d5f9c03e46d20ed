/*
 * fuzz/bytes.h — reads a libFuzzer input as a stream of choices (small
 * integers, picks from a table, byte strings) for the C fuzz targets. Past the
 * end every read returns 0 / empty, so any input is a complete script.
 * Header-only (static functions): each target includes it once.
 */
#ifndef HYP_FUZZ_BYTES_H
#define HYP_FUZZ_BYTES_H

#include <stddef.h>
#include <stdint.h>

typedef struct fz {
  const uint8_t *p;
  size_t n;
} fz;

/* The next byte (0 past the end). */
static unsigned fz_u8(fz *f) {
  if (!f->n) return 0;
  f->n--;
  return *f->p++;
}

/* The next two bytes, little-endian. */
static unsigned fz_u16(fz *f) {
  unsigned lo = fz_u8(f);
  return lo | fz_u8(f) << 8;
}

/* A number in [0, n) (n > 0). */
static unsigned fz_pick(fz *f, unsigned n) { return fz_u8(f) % n; }

/* Up to max bytes (length from the stream) copied into out; returns the length. */
static size_t fz_bytes(fz *f, char *out, size_t max) {
  size_t len = fz_u8(f);
  if (len > max) len = max;
  if (len > f->n) len = f->n;
  for (size_t i = 0; i < len; i++) out[i] = (char)f->p[i];
  f->p += len;
  f->n -= len;
  return len;
}

#define FZ_COUNT(a) (sizeof(a) / sizeof *(a))

#endif
