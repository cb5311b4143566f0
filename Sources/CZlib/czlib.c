#include "czlib.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int czlib_read_file(const char *path, size_t max_size, unsigned char **data, size_t *size,
                    char *message, size_t message_size) {
  *data = NULL;
  *size = 0;
  // gzopen reads plain (uncompressed) files transparently too.
  gzFile f = gzopen(path, "rb");
  if (!f) {
    snprintf(message, message_size, "cannot open: %s", strerror(errno ? errno : ENOENT));
    return 1;
  }
  gzbuffer(f, 1 << 17);
  size_t capacity = 1 << 20, used = 0;
  unsigned char *buffer = malloc(capacity);
  if (!buffer) {
    gzclose(f);
    snprintf(message, message_size, "out of memory");
    return 1;
  }
  for (;;) {
    if (used == capacity) {
      if (capacity >= max_size) {
        free(buffer);
        gzclose(f);
        snprintf(message, message_size, "larger than the limit of %zu bytes", max_size);
        return 1;
      }
      size_t next = capacity * 2 > max_size ? max_size : capacity * 2;
      unsigned char *grown = realloc(buffer, next);
      if (!grown) {
        free(buffer);
        gzclose(f);
        snprintf(message, message_size, "out of memory");
        return 1;
      }
      buffer = grown;
      capacity = next;
    }
    size_t want = capacity - used;
    if (want > (1u << 30)) want = 1u << 30;
    int n = gzread(f, buffer + used, (unsigned)want);
    if (n < 0) {
      int code;
      const char *e = gzerror(f, &code);
      snprintf(message, message_size, "corrupt gzip data (%s)", e ? e : "unknown error");
      free(buffer);
      gzclose(f);
      return 1;
    }
    if (n == 0) {
      // gzread returns 0 both at the end and for a truncated stream; gzerror tells.
      int code = Z_OK;
      const char *e = gzerror(f, &code);
      if (code != Z_OK && code != Z_STREAM_END) {
        snprintf(message, message_size, "corrupt or truncated gzip data (%s)", e ? e : "unknown error");
        free(buffer);
        gzclose(f);
        return 1;
      }
      break;
    }
    used += (size_t)n;
  }
  gzclose(f);
  *data = buffer;
  *size = used;
  return 0;
}

void czlib_free(unsigned char *data) { free(data); }
