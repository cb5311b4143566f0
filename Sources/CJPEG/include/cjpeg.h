// cjpeg: a thin, setjmp-protected shim over libjpeg-turbo (the libjpeg 6.2 API of
// Debian's libjpeg62-turbo-dev) for the Vision module.
//
// libjpeg reports a fatal error by calling the error manager's error_exit, which must not
// return. Here it longjmps back into cjpeg.c: a longjmp across Swift frames would be
// undefined behaviour, so every libjpeg call sits behind a setjmp in C and each function
// reports failure with a status code plus a human-readable message copied into a
// caller-provided buffer. Nothing in this header exposes libjpeg types.
//
// Why the libjpeg API and not TurboJPEG (libturbojpeg0-dev): Debian 12 ships TurboJPEG
// 2.1, whose tjDecompress2 cannot convert CMYK to RGB, hides the saved markers (the EXIF
// orientation would need a second parser of the marker stream) and reports corrupt data
// only as one string. The libjpeg API gives the header before any pixel memory is
// committed, the APP1 segments, the Adobe marker, DCT scaling and each warning's code.
//
// All functions are reentrant: state lives in per-call libjpeg structs, never in globals.
// Warnings are never printed.

#ifndef CJPEG_H
#define CJPEG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Result of every cjpeg function. On anything but CJPEG_OK the message buffer holds a
/// NUL-terminated, human-readable reason (without a file name; the caller adds that).
typedef enum cjpeg_status {
  CJPEG_OK = 0,
  CJPEG_ERR_NOT_JPEG = 1,     // empty input, or no start-of-image marker (FF D8 FF)
  CJPEG_ERR_TRUNCATED = 2,    // the data ends before the image does
  CJPEG_ERR_CORRUPT = 3,      // libjpeg rejected the stream, or warned while decoding pixels
  CJPEG_ERR_TOO_LARGE = 4,    // width*height exceeds the caller's max_pixels
  CJPEG_ERR_ARGUMENT = 5,     // caller error (NULL pointer, output buffer too small, ...)
  CJPEG_ERR_NO_MEMORY = 6,
  CJPEG_ERR_UNSUPPORTED = 7,  // valid JPEG that libjpeg cannot decode (e.g. 12-bit samples)
} cjpeg_status;

/// Recommended size of the message buffers; longer messages are truncated, never overflowed.
#define CJPEG_MESSAGE_CAPACITY 320

/// Colour space of the stored components (libjpeg's guess from JFIF/Adobe markers and
/// component ids, as used for decoding).
#define CJPEG_COLOR_GRAY 1
#define CJPEG_COLOR_RGB 2
#define CJPEG_COLOR_YCBCR 3
#define CJPEG_COLOR_CMYK 4
#define CJPEG_COLOR_YCCK 5
#define CJPEG_COLOR_OTHER 0

/// What the file declares before any entropy-coded data is read.
typedef struct cjpeg_header {
  uint32_t width;         // as stored in SOF, before the EXIF orientation: 1 ... 65535
  uint32_t height;
  int32_t components;     // 1, 3 or 4 (1...10 are legal JPEG; others fail to decode)
  int32_t color_space;    // CJPEG_COLOR_*
  int32_t progressive;    // 1 for a progressive (SOF2) file
  int32_t orientation;    // EXIF orientation 1...8 (1 when absent or invalid)
  int32_t adobe;          // 1 when an Adobe APP14 marker is present (CMYK stored inverted)
  int32_t h_sampling[4];  // sampling factors of the first four components (0 if absent)
  int32_t v_sampling[4];
} cjpeg_header;

/// Reads the markers up to the first scan (SOF, APP1 Exif, Adobe, tables): nothing after
/// the start of scan is looked at, so a prefix of the file suffices when it reaches the
/// scan; a prefix that ends earlier gives CJPEG_ERR_TRUNCATED. Allocates nothing
/// proportional to the image: callers use it to refuse decompression bombs.
cjpeg_status cjpeg_read_header(const uint8_t *data, size_t size, cjpeg_header *header,
                               char *message, size_t message_capacity);

typedef struct cjpeg_decode_options {
  /// 1 (gray), 3 (RGB) or 0 (natural: 1 for gray files, 3 for everything else).
  /// Gray from YCbCr is the stored luma (Y, BT.601 weights applied by the encoder); gray
  /// from CMYK is the BT.601 luma of the converted RGB, (19595 R + 38470 G + 7471 B +
  /// 32768) >> 16.
  int32_t channels;
  /// libjpeg's DCT scaling, 1/scale_denom: 1, 2, 4 or 8. Output sides are
  /// ceil(side / scale_denom).
  int32_t scale_denom;
  /// Refuse images with width * height > max_pixels (the stored size, whatever the
  /// scale: a progressive decode holds every coefficient) before allocating anything for
  /// pixels (0 = no limit).
  uint64_t max_pixels;
} cjpeg_decode_options;

/// The decoded image's shape for these options: sides scaled, swapped for EXIF
/// orientations 5-8 (the output is always shown upright). Returns 0 on bad options.
int32_t cjpeg_output_shape(const cjpeg_header *header, const cjpeg_decode_options *options,
                           uint32_t *width, uint32_t *height, int32_t *channels);

/// Decodes a complete JPEG held in memory into `out`, which must hold at least
/// width * height * channels bytes of cjpeg_output_shape. Output is 8-bit, row-major,
/// channel-interleaved (HWC), rows tightly packed, with the EXIF orientation applied.
/// CMYK and YCCK files are converted to RGB: with an Adobe marker the stored values are
/// inverted (Photoshop's convention, the usual case), R = C*K/255, otherwise
/// R = (255-C)(255-K)/255 (likewise G from M, B from Y), rounded.
/// Baseline, extended, progressive and arithmetic-coded files, any subsampling; DCT
/// method: accurate integer (libjpeg's default, as djpeg), fancy upsampling on.
/// Corrupt data: a warning from libjpeg while pixels are being decoded (bad Huffman code,
/// data ending early, a marker inside the scan) fails the decode (CJPEG_ERR_CORRUPT or
/// CJPEG_ERR_TRUNCATED) instead of returning an image with grey or smeared blocks.
/// Warnings after the last pixel row (e.g. bytes before the final EOI marker) are ignored:
/// the pixels are complete. Files with more than 500 scans are refused (TurboJPEG's limit
/// against CPU exhaustion).
/// `header` (may be NULL) receives the header fields, also on CJPEG_ERR_TOO_LARGE.
cjpeg_status cjpeg_decode(const uint8_t *data, size_t size, const cjpeg_decode_options *options,
                          uint8_t *out, size_t out_size, cjpeg_header *header, char *message,
                          size_t message_capacity);

#ifdef __cplusplus
}
#endif

#endif  // CJPEG_H
