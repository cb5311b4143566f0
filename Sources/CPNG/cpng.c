// cpng.c: setjmp-protected libpng 1.6 calls for the Vision module (see include/cpng.h).
//
// Structure of every entry point:
//   outer function  - validates arguments and owns all resources (libpng structs,
//                     buffers) in a `*_job` struct on its stack; frees them after the
//                     inner function returns, whichever way it returns;
//   inner function  - arms setjmp and makes the libpng calls. A libpng error longjmps back
//                     into the inner function, which turns it into a status code.
// Keeping resources out of the function that calls setjmp means no local variable that
// is read after a longjmp was modified between setjmp and longjmp, so nothing has to be
// declared volatile (C11 7.13.2.1: such locals are indeterminate after the longjmp).

#include "cpng.h"

#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Signature (8) + IHDR length/type (8) + IHDR data (13) + IHDR CRC (4).
#define HEADER_BYTES 33

static const uint8_t png_signature[8] = {137, 80, 78, 71, 13, 10, 26, 10};

// Ancillary chunks that cannot change the decoded pixels (pixels are delivered as stored,
// without colour management or gamma). libpng skips them without parsing or inflating
// them, which saves time and keeps a damaged text/ICC/EXIF chunk from failing or
// delaying the decode. Their CRCs are still read; an ancillary CRC error is only a warning.
static const png_byte ignored_chunks[] =
    "tEXt\0zTXt\0iTXt\0iCCP\0eXIf\0sPLT\0tIME\0hIST\0pCAL\0sCAL\0oFFs\0pHYs\0"
    "gAMA\0cHRM\0sRGB\0sBIT\0bKGD";
#define IGNORED_CHUNK_COUNT 17

// ----------------------------------------------------------------------------------------
// Messages and I/O state shared by the libpng callbacks

typedef struct io_context {
  // Reading: the whole PNG is in memory.
  const uint8_t *data;
  size_t size;
  size_t offset;
  // Header-only mode: a read that starts at or after `stop_at` ends parsing (libpng asks
  // for the next chunk header only after IHDR has been CRC-checked and validated).
  size_t stop_at;
  int stopped;
  // Writing: a growable buffer.
  uint8_t *buffer;
  size_t length;
  size_t capacity;
  // Error classification and text.
  int truncated;
  int out_of_memory;
  char error[CPNG_MESSAGE_CAPACITY];
  char warning[CPNG_MESSAGE_CAPACITY];
  size_t warning_offset;  // input offset when `warning` was recorded
} io_context;

static void set_message(char *message, size_t capacity, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void set_message(char *message, size_t capacity, const char *format, ...) {
  if (message == NULL || capacity == 0) return;
  va_list args;
  va_start(args, format);
  vsnprintf(message, capacity, format, args);
  va_end(args);
}

// libpng error callback: remember the text, then leave libpng through our setjmp. It must
// not return (libpng would abort).
static void on_error(png_structp png, png_const_charp text) {
  io_context *io = (io_context *)png_get_error_ptr(png);
  if (io != NULL) snprintf(io->error, sizeof io->error, "%s", text ? text : "libpng error");
  png_longjmp(png, 1);
}

// libpng warning callback: never print (a data loader decoding millions of files must not
// spam stderr). Recent warnings are kept because libpng often explains an error in
// warnings issued just before it, e.g. "Invalid color type in IHDR" then "Invalid IHDR data".
static void on_warning(png_structp png, png_const_charp text) {
  io_context *io = (io_context *)png_get_error_ptr(png);
  if (io == NULL) return;
  // Warnings issued without input being consumed in between belong together (libpng's
  // IHDR check warns once per problem before failing); keep them all, "; "-separated.
  size_t used = strlen(io->warning);
  if (used != 0 && io->warning_offset == io->offset && used + 2 < sizeof io->warning) {
    snprintf(io->warning + used, sizeof io->warning - used, "; %s", text ? text : "");
  } else {
    snprintf(io->warning, sizeof io->warning, "%s", text ? text : "");
  }
  io->warning_offset = io->offset;
}

static void read_data(png_structp png, png_bytep destination, size_t length) {
  io_context *io = (io_context *)png_get_io_ptr(png);
  if (io->stop_at != 0 && io->offset >= io->stop_at) {
    io->stopped = 1;
    png_longjmp(png, 1);
  }
  if (length > io->size - io->offset) {
    io->truncated = 1;
    char text[128];
    snprintf(text, sizeof text, "truncated: the data ends after %zu bytes, inside the PNG stream",
             io->size);
    png_error(png, text);
  }
  memcpy(destination, io->data + io->offset, length);
  io->offset += length;
}

static void write_data(png_structp png, png_bytep source, size_t length) {
  io_context *io = (io_context *)png_get_io_ptr(png);
  if (length > io->capacity - io->length) {
    size_t capacity = io->capacity ? io->capacity : 4096;
    while (capacity - io->length < length) capacity *= 2;
    uint8_t *grown = (uint8_t *)realloc(io->buffer, capacity);
    if (grown == NULL) {
      io->out_of_memory = 1;
      png_error(png, "out of memory while encoding");
    }
    io->buffer = grown;
    io->capacity = capacity;
  }
  memcpy(io->buffer + io->length, source, length);
  io->length += length;
}

// Needed: with a NULL flush callback libpng would fflush() the io pointer as a FILE *.
static void flush_nothing(png_structp png) { (void)png; }

// Turns the recorded libpng error into a status and a readable message.
// libpng formats chunk errors as "IDAT: CRC error"; they read better as
// "CRC error in IDAT chunk".
static cpng_status report_error(const io_context *io, char *message, size_t capacity) {
  cpng_status status = CPNG_ERR_CORRUPT;
  if (io->out_of_memory || strstr(io->error, "memory") != NULL) {
    status = CPNG_ERR_NO_MEMORY;
  } else if (io->truncated) {
    status = CPNG_ERR_TRUNCATED;
  }
  const char *text = io->error[0] ? io->error : "libpng error";
  // libpng's wording for a stream without any IDAT chunk.
  if (strcmp(text, "IEND: out of place") == 0) text = "no image data (IEND before any IDAT chunk)";
  char body[CPNG_MESSAGE_CAPACITY];
  int chunk_prefix = strlen(text) > 6 && text[4] == ':' && text[5] == ' ';
  for (int i = 0; chunk_prefix && i < 4; i++) {
    char c = text[i];
    chunk_prefix = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
  }
  if (chunk_prefix) {
    snprintf(body, sizeof body, "%s in %.4s chunk", text + 6, text);
  } else {
    snprintf(body, sizeof body, "%s", text);
  }
  // A warning issued while processing the same bytes as the error explains it.
  if (io->warning[0] && io->warning_offset == io->offset && strcmp(io->warning, text) != 0) {
    set_message(message, capacity, "%s (%s)", body, io->warning);
  } else {
    set_message(message, capacity, "%s", body);
  }
  return status;
}

static cpng_status check_signature(const uint8_t *data, size_t size, char *message,
                                   size_t capacity) {
  if (data == NULL || size == 0) {
    set_message(message, capacity, "empty file (0 bytes)");
    return CPNG_ERR_NOT_PNG;
  }
  size_t n = size < 8 ? size : 8;
  if (memcmp(data, png_signature, n) == 0) {
    if (n == 8) return CPNG_OK;
    set_message(message, capacity, "truncated: only %zu bytes, shorter than the PNG signature",
                size);
    return CPNG_ERR_TRUNCATED;
  }
  // Name the common impostors: mislabelled files are frequent in scraped datasets.
  const char *hint = "";
  if (size >= 4 && memcmp(data, png_signature, 4) == 0) {
    // Bytes 5-8 (CR LF ^Z LF) exist precisely to detect text-mode transfers.
    hint = ": bytes 5-8 (CR LF ^Z LF) damaged, as by a text-mode transfer";
  } else if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
    hint = ": looks like a JPEG file";
  } else if (size >= 6 && (memcmp(data, "GIF87a", 6) == 0 || memcmp(data, "GIF89a", 6) == 0)) {
    hint = ": looks like a GIF file";
  } else if (size >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0) {
    hint = ": looks like a WebP file";
  } else if (size >= 2 && data[0] == 'B' && data[1] == 'M') {
    hint = ": looks like a BMP file";
  }
  set_message(message, capacity, "not a PNG file (bad signature%s)", hint);
  return CPNG_ERR_NOT_PNG;
}

static void copy_header(cpng_header *header, png_uint_32 width, png_uint_32 height,
                        int bit_depth, int color_type, int interlace) {
  if (header == NULL) return;
  header->width = width;
  header->height = height;
  header->bit_depth = bit_depth;
  header->color_type = color_type;
  header->interlace_method = interlace;
}

int32_t cpng_output_channels(const cpng_header *header, int32_t requested_channels) {
  if (requested_channels == 1 || requested_channels == 3) return requested_channels;
  if (requested_channels != 0 || header == NULL) return 0;
  return (header->color_type & PNG_COLOR_MASK_COLOR) ? 3 : 1;
}

// ----------------------------------------------------------------------------------------
// Header

typedef struct read_job {
  png_structp png;
  png_infop info;
  io_context io;
  uint8_t *scratch;         // one intermediate row, or a whole intermediate image
  png_bytepp row_pointers;  // interlaced images only
} read_job;

static cpng_status read_job_start(read_job *job, const uint8_t *data, size_t size,
                                  char *message, size_t capacity) {
  memset(job, 0, sizeof *job);
  job->io.data = data;
  job->io.size = size;
  job->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job->io, on_error, on_warning);
  if (job->png != NULL) job->info = png_create_info_struct(job->png);
  if (job->png == NULL || job->info == NULL) {
    set_message(message, capacity, "out of memory creating the libpng decoder");
    return CPNG_ERR_NO_MEMORY;
  }
  return CPNG_OK;
}

static void read_job_finish(read_job *job) {
  if (job->png != NULL) png_destroy_read_struct(&job->png, job->info ? &job->info : NULL, NULL);
  free(job->scratch);
  free(job->row_pointers);
}

static cpng_status read_header_protected(read_job *job, cpng_header *header, char *message,
                                         size_t capacity) {
  png_structp png = job->png;
  png_infop info = job->info;
  if (setjmp(png_jmpbuf(png)) != 0) {
    // The stop in read_data is the expected way out; any other jump is an error. After a
    // stop, io.stop_at is cleared, so a libpng error in png_get_IHDR below lands here as
    // an error instead of looping.
    if (!job->io.stopped || job->io.stop_at == 0) return report_error(&job->io, message, capacity);
    job->io.stop_at = 0;
  } else {
    // Widths/heights up to the PNG maximum (2^31-1) are legal; size policy belongs to the
    // caller's max_pixels, not libpng's default 1,000,000 x 1,000,000 cap.
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_set_read_fn(png, &job->io, read_data);
    job->io.stop_at = HEADER_BYTES;
    png_read_info(png, info);  // always ends in the stop (or an error) at byte 33
    job->io.stop_at = 0;
  }
  if (png_get_image_width(png, info) == 0) {
    set_message(message, capacity, "the first chunk is not IHDR");
    return CPNG_ERR_CORRUPT;
  }
  png_uint_32 width, height;
  int bit_depth, color_type, interlace;
  // png_get_IHDR re-validates the fields and may png_error: still under the setjmp above.
  png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
  copy_header(header, width, height, bit_depth, color_type, interlace);
  return CPNG_OK;
}

cpng_status cpng_read_header(const uint8_t *data, size_t size, cpng_header *header,
                             char *message, size_t message_capacity) {
  set_message(message, message_capacity, "%s", "");
  if (header == NULL) {
    set_message(message, message_capacity, "cpng_read_header: header is NULL");
    return CPNG_ERR_ARGUMENT;
  }
  memset(header, 0, sizeof *header);
  cpng_status status = check_signature(data, size, message, message_capacity);
  if (status != CPNG_OK) return status;
  read_job job;
  status = read_job_start(&job, data, size, message, message_capacity);
  if (status == CPNG_OK) status = read_header_protected(&job, header, message, message_capacity);
  read_job_finish(&job);
  return status;
}

// ----------------------------------------------------------------------------------------
// Decode

// Exact round(x / 255) for 0 <= x <= 255 * 255.
static inline uint32_t div255(uint32_t x) { return (x + 128 + ((x + 128) >> 8)) >> 8; }

// BT.601 luma in 16-bit fixed point; the weights sum to 65536, so gray stays gray and
// white stays 255.
static inline uint8_t luma(uint32_t r, uint32_t g, uint32_t b) {
  return (uint8_t)((19595 * r + 38470 * g + 7471 * b + 32768) >> 16);
}

static inline uint8_t over(uint32_t c, uint32_t a, uint32_t background) {
  return (uint8_t)div255(c * a + background * (255 - a));
}

// Converts one row of 8-bit samples with `in` channels (1 gray, 2 gray+alpha, 3 RGB,
// 4 RGBA, as libpng delivers them after our transforms) into `out` channels (1 or 3).
// Alpha is composited over `bg` when `composite`, else dropped.
static void convert_row(const uint8_t *src, int in, uint8_t *dst, int out, size_t width,
                        int composite, const uint8_t bg[3]) {
  const uint32_t bg_gray = luma(bg[0], bg[1], bg[2]);
  switch (in * 10 + out) {
    case 11:
    case 33:
      memcpy(dst, src, width * (size_t)in);
      break;
    case 13:
      for (size_t x = 0; x < width; x++, dst += 3) dst[0] = dst[1] = dst[2] = src[x];
      break;
    case 31:
      for (size_t x = 0; x < width; x++, src += 3) dst[x] = luma(src[0], src[1], src[2]);
      break;
    case 21:
      if (composite) {
        for (size_t x = 0; x < width; x++, src += 2) dst[x] = over(src[0], src[1], bg_gray);
      } else {
        for (size_t x = 0; x < width; x++, src += 2) dst[x] = src[0];
      }
      break;
    case 23:
      for (size_t x = 0; x < width; x++, src += 2, dst += 3) {
        if (composite) {
          dst[0] = over(src[0], src[1], bg[0]);
          dst[1] = over(src[0], src[1], bg[1]);
          dst[2] = over(src[0], src[1], bg[2]);
        } else {
          dst[0] = dst[1] = dst[2] = src[0];
        }
      }
      break;
    case 41:
      for (size_t x = 0; x < width; x++, src += 4) {
        if (composite) {
          dst[x] = luma(over(src[0], src[3], bg[0]), over(src[1], src[3], bg[1]),
                        over(src[2], src[3], bg[2]));
        } else {
          dst[x] = luma(src[0], src[1], src[2]);
        }
      }
      break;
    case 43:
      if (composite) {
        for (size_t x = 0; x < width; x++, src += 4, dst += 3) {
          dst[0] = over(src[0], src[3], bg[0]);
          dst[1] = over(src[1], src[3], bg[1]);
          dst[2] = over(src[2], src[3], bg[2]);
        }
      } else {
        for (size_t x = 0; x < width; x++, src += 4, dst += 3) {
          dst[0] = src[0];
          dst[1] = src[1];
          dst[2] = src[2];
        }
      }
      break;
  }
}

static cpng_status decode_protected(read_job *job, const cpng_decode_options *options,
                                    uint8_t *out, size_t out_size, cpng_header *header,
                                    char *message, size_t capacity) {
  png_structp png = job->png;
  png_infop info = job->info;
  if (setjmp(png_jmpbuf(png)) != 0) return report_error(&job->io, message, capacity);

  png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);  // see read_header_protected
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, ignored_chunks, IGNORED_CHUNK_COUNT);
  png_set_read_fn(png, &job->io, read_data);
  png_read_info(png, info);  // metadata up to the first IDAT; no pixel memory yet

  png_uint_32 width, height;
  int bit_depth, color_type, interlace;
  png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
  copy_header(header, width, height, bit_depth, color_type, interlace);
  uint64_t pixels = (uint64_t)width * height;
  if (options->max_pixels != 0 && pixels > options->max_pixels) {
    set_message(message, capacity,
                "%u\xC3\x97%u pixels exceeds the limit of %llu pixels (raise maxPixels to read it)",
                (unsigned)width, (unsigned)height, (unsigned long long)options->max_pixels);
    return CPNG_ERR_TOO_LARGE;
  }
  cpng_header source = {width, height, bit_depth, color_type, interlace};
  const int out_channels = cpng_output_channels(&source, options->channels);
  if (out_channels == 0) {
    set_message(message, capacity, "unsupported channel count %d (use 0, 1 or 3)",
                (int)options->channels);
    return CPNG_ERR_ARGUMENT;
  }
  const size_t out_row = (size_t)width * (size_t)out_channels;
  if (out_size / out_row < height) {
    set_message(message, capacity, "output buffer of %zu bytes is too small for %u\xC3\x97%u\xC3\x97%d",
                out_size, (unsigned)width, (unsigned)height, out_channels);
    return CPNG_ERR_ARGUMENT;
  }

  // Transforms: everything to 8-bit gray or RGB, with alpha only if it will be used.
  const int has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
  const int has_alpha = (color_type & PNG_COLOR_MASK_ALPHA) != 0 || has_trns;
  const int composite = options->composite != 0 && has_alpha;
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (composite && has_trns) png_set_tRNS_to_alpha(png);
  // Palette expansion turns tRNS into an alpha channel by itself; strip that too.
  if (!composite && has_alpha) png_set_strip_alpha(png);
  if (bit_depth == 16) png_set_scale_16(png);
  if ((color_type & PNG_COLOR_MASK_COLOR) == 0 && out_channels == 3) png_set_gray_to_rgb(png);
  const int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);

  const int in_channels = png_get_channels(png, info);
  const size_t rowbytes = png_get_rowbytes(png, info);
  if (png_get_bit_depth(png, info) != 8 || in_channels < 1 || in_channels > 4 ||
      rowbytes != (size_t)width * (size_t)in_channels) {
    set_message(message, capacity, "internal error: unexpected libpng output format "
                "(%d channels, %d bits)", in_channels, png_get_bit_depth(png, info));
    return CPNG_ERR_CORRUPT;
  }

  const int direct = in_channels == out_channels;
  if (passes == 1) {
    // Row by row: only one intermediate row is ever held (none when no conversion).
    if (!direct && (job->scratch = (uint8_t *)malloc(rowbytes)) == NULL) {
      job->io.out_of_memory = 1;
      png_error(png, "out of memory allocating a row buffer");
    }
    for (png_uint_32 y = 0; y < height; y++) {
      uint8_t *destination = out + (size_t)y * out_row;
      if (direct) {
        png_read_row(png, destination, NULL);
      } else {
        png_read_row(png, job->scratch, NULL);
        convert_row(job->scratch, in_channels, destination, out_channels, width, composite,
                    options->background);
      }
    }
  } else {
    // Adam7 fills every row over seven passes, so the whole image must be addressable:
    // the output itself when no conversion is needed, else an intermediate image.
    if (!direct && (job->scratch = (uint8_t *)malloc(rowbytes * height)) == NULL) {
      job->io.out_of_memory = 1;
      png_error(png, "out of memory allocating the interlaced image buffer");
    }
    if ((job->row_pointers = (png_bytepp)malloc(sizeof(png_bytep) * height)) == NULL) {
      job->io.out_of_memory = 1;
      png_error(png, "out of memory allocating row pointers");
    }
    for (png_uint_32 y = 0; y < height; y++) {
      job->row_pointers[y] = direct ? out + (size_t)y * out_row : job->scratch + (size_t)y * rowbytes;
    }
    png_read_image(png, job->row_pointers);
    if (!direct) {
      for (png_uint_32 y = 0; y < height; y++) {
        convert_row(job->row_pointers[y], in_channels, out + (size_t)y * out_row, out_channels,
                    width, composite, options->background);
      }
    }
  }
  // Reads (and CRC-checks) the chunks after the image data up to IEND, so a file cut
  // short after its last IDAT is reported as truncated rather than silently accepted.
  png_read_end(png, NULL);
  return CPNG_OK;
}

cpng_status cpng_decode(const uint8_t *data, size_t size, const cpng_decode_options *options,
                        uint8_t *out, size_t out_size, cpng_header *header, char *message,
                        size_t message_capacity) {
  set_message(message, message_capacity, "%s", "");
  if (header != NULL) memset(header, 0, sizeof *header);
  if (options == NULL || (out == NULL && out_size != 0)) {
    set_message(message, message_capacity, "cpng_decode: options or output is NULL");
    return CPNG_ERR_ARGUMENT;
  }
  cpng_status status = check_signature(data, size, message, message_capacity);
  if (status != CPNG_OK) return status;
  read_job job;
  status = read_job_start(&job, data, size, message, message_capacity);
  if (status == CPNG_OK) {
    status = decode_protected(&job, options, out, out_size, header, message, message_capacity);
  }
  read_job_finish(&job);
  return status;
}

// ----------------------------------------------------------------------------------------
// Encode

typedef struct write_job {
  png_structp png;
  png_infop info;
  io_context io;
} write_job;

static cpng_status encode_protected(write_job *job, const uint8_t *pixels, uint32_t width,
                                    uint32_t height, int channels, int level, char *message,
                                    size_t capacity) {
  png_structp png = job->png;
  if (setjmp(png_jmpbuf(png)) != 0) return report_error(&job->io, message, capacity);
  static const int color_types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                     PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
  png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
  png_set_write_fn(png, &job->io, write_data, flush_nothing);
  png_set_IHDR(png, job->info, width, height, 8, color_types[channels], PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (level >= 0) png_set_compression_level(png, level);
  png_write_info(png, job->info);
  const size_t stride = (size_t)width * (size_t)channels;
  for (uint32_t y = 0; y < height; y++) png_write_row(png, pixels + (size_t)y * stride);
  png_write_end(png, NULL);
  return CPNG_OK;
}

cpng_status cpng_encode(const uint8_t *pixels, uint32_t width, uint32_t height,
                        int32_t channels, int32_t compression_level, uint8_t **out,
                        size_t *out_size, char *message, size_t message_capacity) {
  set_message(message, message_capacity, "%s", "");
  if (out == NULL || out_size == NULL) {
    set_message(message, message_capacity, "cpng_encode: output pointers are NULL");
    return CPNG_ERR_ARGUMENT;
  }
  *out = NULL;
  *out_size = 0;
  if (pixels == NULL) {
    set_message(message, message_capacity, "cpng_encode: pixels are NULL");
    return CPNG_ERR_ARGUMENT;
  }
  if (width == 0 || height == 0 || width > PNG_UINT_31_MAX || height > PNG_UINT_31_MAX) {
    set_message(message, message_capacity,
                "cannot encode a %u\xC3\x97%u image (PNG needs 1 ... 2^31-1 pixels per side)",
                (unsigned)width, (unsigned)height);
    return CPNG_ERR_ARGUMENT;
  }
  if (channels < 1 || channels > 4) {
    set_message(message, message_capacity, "cannot encode %d channels (PNG takes 1 to 4)",
                (int)channels);
    return CPNG_ERR_ARGUMENT;
  }
  if (compression_level < -1 || compression_level > 9) {
    set_message(message, message_capacity, "compression level %d is not in -1 ... 9",
                (int)compression_level);
    return CPNG_ERR_ARGUMENT;
  }
  write_job job;
  memset(&job, 0, sizeof job);
  cpng_status status = CPNG_OK;
  job.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &job.io, on_error, on_warning);
  if (job.png != NULL) job.info = png_create_info_struct(job.png);
  if (job.png == NULL || job.info == NULL) {
    set_message(message, message_capacity, "out of memory creating the libpng encoder");
    status = CPNG_ERR_NO_MEMORY;
  } else {
    status = encode_protected(&job, pixels, width, height, channels, compression_level,
                              message, message_capacity);
  }
  if (job.png != NULL) png_destroy_write_struct(&job.png, job.info ? &job.info : NULL);
  if (status == CPNG_OK) {
    *out = job.io.buffer;
    *out_size = job.io.length;
  } else {
    free(job.io.buffer);
  }
  return status;
}

void cpng_free(void *buffer) { free(buffer); }
