// Reading gzip files (zlib), for datasets shipped compressed (e.g. IDX files).
#ifndef PRETEXT_CZLIB_H
#define PRETEXT_CZLIB_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Reads a whole file, gunzipping it when it is gzip-compressed (plain files are returned
// as they are). On success returns 0 and sets *data (free with czlib_free) and *size.
// On failure returns non-zero and writes a message. At most `max_size` bytes are
// produced; a larger result is an error (so a corrupt or hostile file cannot exhaust
// memory).
int czlib_read_file(const char *path, size_t max_size, unsigned char **data, size_t *size,
                    char *message, size_t message_size);
void czlib_free(unsigned char *data);

#ifdef __cplusplus
}
#endif
#endif
