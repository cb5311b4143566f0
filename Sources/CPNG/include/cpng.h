// cpng: a thin, setjmp-protected shim over libpng 1.6 for the Vision module.
//
// libpng reports errors by longjmp-ing out of the failing call. A longjmp across Swift
// frames is undefined behaviour (Swift cleanups and retain/release pairs are skipped), so
// every libpng call lives behind a setjmp inside cpng.c and each function here reports
// failure with a status code plus a human-readable message copied into a caller-provided
// buffer. Nothing in this header exposes libpng types, so Swift never sees png.h.
//
// All functions are reentrant: state lives in per-call libpng structs, never in globals,
// so several threads may decode or encode concurrently. Warnings are captured (and used
// to explain some errors) but never printed.

#ifndef CPNG_H
#define CPNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Result of every cpng function. On anything but CPNG_OK the message buffer holds a
/// NUL-terminated, human-readable reason (without a file name; the caller adds that).
typedef enum cpng_status {
  CPNG_OK = 0,
  CPNG_ERR_NOT_PNG = 1,    // empty input or wrong 8-byte signature
  CPNG_ERR_TRUNCATED = 2,  // input ended before the PNG did
  CPNG_ERR_CORRUPT = 3,    // libpng rejected the stream (CRC, bad IHDR, zlib error, ...)
  CPNG_ERR_TOO_LARGE = 4,  // width*height exceeds the caller's max_pixels
  CPNG_ERR_ARGUMENT = 5,   // caller error (NULL pointer, output buffer too small, ...)
  CPNG_ERR_NO_MEMORY = 6,
} cpng_status;

/// Recommended size of the message buffers passed to cpng functions; longer messages are
/// truncated (never overflowed).
#define CPNG_MESSAGE_CAPACITY 320

/// PNG colour types as stored in IHDR (PNG spec values).
#define CPNG_COLOR_GRAY 0
#define CPNG_COLOR_RGB 2
#define CPNG_COLOR_PALETTE 3
#define CPNG_COLOR_GRAY_ALPHA 4
#define CPNG_COLOR_RGBA 6

/// The IHDR fields, as validated by libpng (so every combination here is legal PNG).
typedef struct cpng_header {
  uint32_t width;            // 1 ... 2^31-1
  uint32_t height;           // 1 ... 2^31-1
  int32_t bit_depth;         // 1, 2, 4, 8 or 16 (per sample; palette index bits for palette)
  int32_t color_type;        // CPNG_COLOR_*
  int32_t interlace_method;  // 0 = none, 1 = Adam7
} cpng_header;

/// Reads only the signature and IHDR chunk (33 bytes; anything after it is not looked at,
/// so a header-only prefix of a file suffices). Validates the IHDR CRC and field values,
/// and allocates nothing proportional to the image: callers use it to refuse
/// decompression bombs before committing memory.
cpng_status cpng_read_header(const uint8_t *data, size_t size, cpng_header *header,
                             char *message, size_t message_capacity);

/// Channel count of the 8-bit output for `requested_channels` (1, 3, or 0 = "natural":
/// 1 for gray and gray+alpha sources, 3 for RGB, RGBA and palette sources).
/// Returns 0 if `requested_channels` is not 0, 1 or 3.
int32_t cpng_output_channels(const cpng_header *header, int32_t requested_channels);

typedef struct cpng_decode_options {
  /// 1 (gray), 3 (RGB) or 0 (natural, see cpng_output_channels). RGB is reduced to gray
  /// with BT.601 luma weights: (19595 R + 38470 G + 7471 B + 32768) >> 16.
  int32_t channels;
  /// 0: drop alpha (and ignore tRNS): output the colour values as stored.
  /// 1: composite over `background` (sRGB bytes, no gamma):
  ///    out = round((c * a + bg * (255 - a)) / 255), computed after 16->8 reduction;
  ///    a gray result uses the luma of `background`.
  int32_t composite;
  uint8_t background[3];
  /// Refuse images with width * height > max_pixels before allocating anything for
  /// pixels (0 = no limit).
  uint64_t max_pixels;
} cpng_decode_options;

/// Decodes a complete PNG held in memory into `out`, which must hold at least
/// width * height * C bytes, C = cpng_output_channels(header, options->channels).
/// Output is 8-bit, row-major, channel-interleaved (HWC), rows tightly packed.
/// Handles every colour type, bit depths 1-16 (16-bit reduced with libpng's
/// png_set_scale_16, i.e. correctly rounded v * 255 / 65535), palettes, tRNS and Adam7.
/// Gamma, colour-space chunks and bKGD are ignored: pixels come out as stored.
/// `header` (may be NULL) receives the IHDR fields, also on CPNG_ERR_TOO_LARGE.
/// On error the contents of `out` are unspecified.
cpng_status cpng_decode(const uint8_t *data, size_t size, const cpng_decode_options *options,
                        uint8_t *out, size_t out_size, cpng_header *header,
                        char *message, size_t message_capacity);

/// Encodes 8-bit pixels (row-major, HWC, rows tightly packed; channels 1 = gray,
/// 2 = gray+alpha, 3 = RGB, 4 = RGBA) to a non-interlaced PNG in memory.
/// compression_level is zlib's 0 (store) ... 9 (smallest); -1 selects the default (6).
/// On success *out points to a buffer of *out_size bytes to be released with cpng_free.
cpng_status cpng_encode(const uint8_t *pixels, uint32_t width, uint32_t height,
                        int32_t channels, int32_t compression_level, uint8_t **out,
                        size_t *out_size, char *message, size_t message_capacity);

/// Releases a buffer returned by cpng_encode (NULL is allowed).
void cpng_free(void *buffer);

#ifdef __cplusplus
}
#endif

#endif  // CPNG_H
