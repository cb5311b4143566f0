// cjpeg.c: setjmp-protected libjpeg-turbo calls for the Vision module (see include/cjpeg.h).
//
// Structure, as in Sources/CPNG/cpng.c: the outer function validates arguments and owns
// every resource (the libjpeg struct, temporary buffers) in a `jpeg_job` on its stack and
// releases them after the inner function returns, whichever way it returns; the inner
// function arms setjmp and makes the libjpeg calls. A libjpeg error longjmps back into the
// inner function, which turns it into a status code. Resources live in the job (reached
// through a pointer), never in locals modified between setjmp and longjmp, so nothing has
// to be volatile (C11 7.13.2.1).

#include "cjpeg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>  // jpeglib.h uses FILE and size_t without including them
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

// TurboJPEG's TJFLAG_LIMITSCANS value: a crafted progressive file can hold thousands of
// tiny scans, each one a pass over the whole coefficient buffer.
#define MAX_SCANS 500

enum phase { PHASE_HEADER, PHASE_PIXELS, PHASE_FINISH };

typedef struct jpeg_job {
  struct jpeg_decompress_struct cinfo;
  struct jpeg_error_mgr err;  // libjpeg only sees this; the job is found from cinfo
  struct jpeg_progress_mgr progress;
  jmp_buf jump;
  int created;
  enum phase phase;
  cjpeg_status failure;  // the status a longjmp reports
  char error[JMSG_LENGTH_MAX + 64];
  uint8_t *stored;  // pixels as decoded, before orientation / CMYK conversion
} jpeg_job;

static void set_message(char *message, size_t capacity, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void set_message(char *message, size_t capacity, const char *format, ...) {
  if (message == NULL || capacity == 0) return;
  va_list args;
  va_start(args, format);
  vsnprintf(message, capacity, format, args);
  va_end(args);
}

static jpeg_job *job_of(j_common_ptr cinfo) { return (jpeg_job *)cinfo->client_data; }

// Leaves libjpeg through the inner function's setjmp with `status` and libjpeg's message.
static void fail(j_common_ptr cinfo, cjpeg_status status) {
  jpeg_job *job = job_of(cinfo);
  char text[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, text);
  int code = cinfo->err->msg_code;
  if (code == JERR_EMPTY_IMAGE) {
    snprintf(job->error, sizeof job->error,
             "the frame header (SOF) gives a width or height of 0 (a height set later by a "
             "DNL marker is not supported)");
  } else if (code == JWRN_JPEG_EOF) {
    snprintf(job->error, sizeof job->error,
             "truncated: the data ends before the JPEG image does (libjpeg: %s)", text);
  } else if (job->phase == PHASE_PIXELS && status == CJPEG_ERR_CORRUPT) {
    snprintf(job->error, sizeof job->error, "corrupt image data: %s", text);
  } else {
    snprintf(job->error, sizeof job->error, "%s", text);
  }
  job->failure = status;
  longjmp(job->jump, 1);
}

// libjpeg's fatal errors; must not return.
static void on_error_exit(j_common_ptr cinfo) {
  switch (cinfo->err->msg_code) {
    case JERR_OUT_OF_MEMORY: fail(cinfo, CJPEG_ERR_NO_MEMORY); break;
    case JERR_BAD_PRECISION:  // 12-bit samples: valid JPEG, not this library build
    case JERR_CONVERSION_NOTIMPL:
    case JERR_NOT_COMPILED:
    case JERR_ARITH_NOTIMPL: fail(cinfo, CJPEG_ERR_UNSUPPORTED); break;
    case JERR_INPUT_EOF: fail(cinfo, CJPEG_ERR_TRUNCATED); break;
    default: fail(cinfo, CJPEG_ERR_CORRUPT); break;
  }
}

// Warnings (msg_level -1) and trace messages (>= 0, ignored). A warning while pixels are
// decoded means libjpeg is about to fill blocks with guesses: fail instead. The data
// ending inside the header is truncation; other header warnings (an unknown JFIF
// revision, a bad ICC chunk) leave the pixels alone and are ignored, as are warnings once
// every pixel row is out.
static void on_emit_message(j_common_ptr cinfo, int msg_level) {
  if (msg_level >= 0) return;
  cinfo->err->num_warnings++;
  jpeg_job *job = job_of(cinfo);
  int code = cinfo->err->msg_code;
  if (code == JWRN_JPEG_EOF && job->phase != PHASE_FINISH) fail(cinfo, CJPEG_ERR_TRUNCATED);
  if (job->phase == PHASE_PIXELS) fail(cinfo, CJPEG_ERR_CORRUPT);
}

static void on_progress(j_common_ptr cinfo) {
  j_decompress_ptr d = (j_decompress_ptr)cinfo;
  if (d->input_scan_number > MAX_SCANS) {
    jpeg_job *job = job_of(cinfo);
    snprintf(job->error, sizeof job->error,
             "more than %d scans: refused (a legitimate progressive JPEG has about 10)",
             MAX_SCANS);
    job->failure = CJPEG_ERR_CORRUPT;
    longjmp(job->jump, 1);
  }
}

// ----------------------------------------------------------------------------------------
// EXIF orientation

static uint32_t read16(const uint8_t *p, int little) {
  return little ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : (uint32_t)p[0] << 8 | p[1];
}

static uint32_t read32(const uint8_t *p, int little) {
  return little ? read16(p, 1) | read16(p + 2, 1) << 16 : read16(p, 0) << 16 | read16(p + 2, 0);
}

// The orientation (tag 0x0112, a SHORT) in IFD0 of an APP1 "Exif\0\0" payload, or 0 when
// the segment is not Exif or holds no valid orientation. Every read is bounds-checked
// against `size`; offsets are relative to the TIFF header, in its byte order.
static int exif_orientation(const uint8_t *payload, size_t size) {
  static const uint8_t exif[6] = {'E', 'x', 'i', 'f', 0, 0};
  if (size < 6 + 8 || memcmp(payload, exif, 6) != 0) return 0;
  const uint8_t *tiff = payload + 6;
  size_t length = size - 6;
  int little;
  if (tiff[0] == 'I' && tiff[1] == 'I') {
    little = 1;
  } else if (tiff[0] == 'M' && tiff[1] == 'M') {
    little = 0;
  } else {
    return 0;
  }
  if (read16(tiff + 2, little) != 42) return 0;
  uint32_t ifd = read32(tiff + 4, little);
  if (ifd > length || length - ifd < 2) return 0;
  uint32_t count = read16(tiff + ifd, little);
  for (uint32_t i = 0; i < count; i++) {
    size_t entry = (size_t)ifd + 2 + 12 * (size_t)i;
    if (entry > length || length - entry < 12) return 0;
    if (read16(tiff + entry, little) != 0x0112) continue;
    uint32_t type = read16(tiff + entry + 2, little);
    uint32_t values = read32(tiff + entry + 4, little);
    if (type != 3 || values < 1) return 0;  // 3 = SHORT, stored in the value field
    uint32_t value = read16(tiff + entry + 8, little);
    return value >= 1 && value <= 8 ? (int)value : 0;
  }
  return 0;
}

// ----------------------------------------------------------------------------------------
// Header

static int32_t color_space_of(J_COLOR_SPACE space) {
  switch (space) {
    case JCS_GRAYSCALE: return CJPEG_COLOR_GRAY;
    case JCS_RGB: return CJPEG_COLOR_RGB;
    case JCS_YCbCr: return CJPEG_COLOR_YCBCR;
    case JCS_CMYK: return CJPEG_COLOR_CMYK;
    case JCS_YCCK: return CJPEG_COLOR_YCCK;
    default: return CJPEG_COLOR_OTHER;
  }
}

static void fill_header(const struct jpeg_decompress_struct *cinfo, cjpeg_header *header) {
  memset(header, 0, sizeof *header);
  header->width = cinfo->image_width;
  header->height = cinfo->image_height;
  header->components = cinfo->num_components;
  header->color_space = color_space_of(cinfo->jpeg_color_space);
  header->progressive = cinfo->progressive_mode ? 1 : 0;
  header->adobe = cinfo->saw_Adobe_marker ? 1 : 0;
  header->orientation = 1;
  for (jpeg_saved_marker_ptr m = cinfo->marker_list; m != NULL; m = m->next) {
    if (m->marker != JPEG_APP0 + 1) continue;
    int orientation = exif_orientation(m->data, m->data_length);
    if (orientation != 0) {
      header->orientation = orientation;
      break;
    }
  }
  for (int i = 0; i < 4 && i < cinfo->num_components; i++) {
    header->h_sampling[i] = cinfo->comp_info[i].h_samp_factor;
    header->v_sampling[i] = cinfo->comp_info[i].v_samp_factor;
  }
}

static cjpeg_status check_start(const uint8_t *data, size_t size, char *message,
                                size_t capacity) {
  if (size == 0) {
    set_message(message, capacity, "empty file (0 bytes)");
    return CJPEG_ERR_NOT_JPEG;
  }
  if (size < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) {
    set_message(message, capacity, "not a JPEG file (no start-of-image marker FF D8 FF)");
    return CJPEG_ERR_NOT_JPEG;
  }
  return CJPEG_OK;
}

// Creates the decompressor on `data` and reads up to the first scan. Only called from
// inner functions, under their setjmp.
static void open_and_read_header(jpeg_job *job, const uint8_t *data, size_t size) {
  job->cinfo.err = jpeg_std_error(&job->err);
  job->err.error_exit = on_error_exit;
  job->err.emit_message = on_emit_message;
  job->created = 1;  // jpeg_destroy is safe on a half-created (zeroed) struct
  jpeg_create_decompress(&job->cinfo);
  job->cinfo.client_data = job;
  job->progress.progress_monitor = on_progress;
  job->cinfo.progress = &job->progress;
  jpeg_mem_src(&job->cinfo, data, (unsigned long)size);
  jpeg_save_markers(&job->cinfo, JPEG_APP0 + 1, 0xFFFF);
  job->phase = PHASE_HEADER;
  jpeg_read_header(&job->cinfo, TRUE);
}

static cjpeg_status report(jpeg_job *job, char *message, size_t capacity) {
  set_message(message, capacity, "%s", job->error);
  return job->failure;
}

static void release(jpeg_job *job) {
  if (job->created) jpeg_destroy_decompress(&job->cinfo);
  free(job->stored);
}

static cjpeg_status read_header_inner(jpeg_job *job, const uint8_t *data, size_t size,
                                      cjpeg_header *header, char *message, size_t capacity) {
  if (setjmp(job->jump)) return report(job, message, capacity);
  open_and_read_header(job, data, size);
  fill_header(&job->cinfo, header);
  return CJPEG_OK;
}

cjpeg_status cjpeg_read_header(const uint8_t *data, size_t size, cjpeg_header *header,
                               char *message, size_t message_capacity) {
  if (message != NULL && message_capacity > 0) message[0] = 0;
  if ((data == NULL && size != 0) || header == NULL) {
    set_message(message, message_capacity, "cjpeg_read_header: NULL argument");
    return CJPEG_ERR_ARGUMENT;
  }
  cjpeg_status status = check_start(data, size, message, message_capacity);
  if (status != CJPEG_OK) return status;
  jpeg_job job;
  memset(&job, 0, sizeof job);
  status = read_header_inner(&job, data, size, header, message, message_capacity);
  release(&job);
  return status;
}

// ----------------------------------------------------------------------------------------
// Decoding

static int is_cmyk(const cjpeg_header *header) {
  return header->color_space == CJPEG_COLOR_CMYK || header->color_space == CJPEG_COLOR_YCCK;
}

int32_t cjpeg_output_shape(const cjpeg_header *header, const cjpeg_decode_options *options,
                           uint32_t *width, uint32_t *height, int32_t *channels) {
  if (header == NULL || options == NULL) return 0;
  int32_t d = options->scale_denom;
  if (d != 1 && d != 2 && d != 4 && d != 8) return 0;
  int32_t c = options->channels;
  if (c == 0) c = header->color_space == CJPEG_COLOR_GRAY ? 1 : 3;
  if (c != 1 && c != 3) return 0;
  // libjpeg's jdiv_round_up(image_width * scale_num, scale_denom) with scale_num = 1.
  uint32_t w = (uint32_t)(((uint64_t)header->width + (uint32_t)d - 1) / (uint32_t)d);
  uint32_t h = (uint32_t)(((uint64_t)header->height + (uint32_t)d - 1) / (uint32_t)d);
  int transposed = header->orientation >= 5;
  if (width) *width = transposed ? h : w;
  if (height) *height = transposed ? w : h;
  if (channels) *channels = c;
  return 1;
}

// Where display pixel (x, y) comes from in the stored w×h image, for EXIF orientation
// `o` (the transform that shows the stored image upright: 2 mirrors left-right, 3 turns
// 180°, 4 mirrors top-bottom, 5 transposes, 6 turns 90° clockwise, 7 transverses, 8 turns
// 90° counter-clockwise).
static void source_of(int o, size_t x, size_t y, size_t w, size_t h, size_t *sx, size_t *sy) {
  switch (o) {
    case 2: *sx = w - 1 - x; *sy = y; break;
    case 3: *sx = w - 1 - x; *sy = h - 1 - y; break;
    case 4: *sx = x; *sy = h - 1 - y; break;
    case 5: *sx = y; *sy = x; break;
    case 6: *sx = y; *sy = h - 1 - x; break;
    case 7: *sx = w - 1 - y; *sy = h - 1 - x; break;
    case 8: *sx = w - 1 - y; *sy = x; break;
    default: *sx = x; *sy = y; break;
  }
}

static uint8_t luma(uint32_t r, uint32_t g, uint32_t b) {
  return (uint8_t)((19595 * r + 38470 * g + 7471 * b + 32768) >> 16);
}

// One stored pixel (`in_channels` samples) to `out_channels` output samples.
static void convert_pixel(const uint8_t *in, int in_channels, int inverted, uint8_t *out,
                          int out_channels) {
  if (in_channels == 4) {
    uint32_t k = in[3];
    uint32_t rgb[3];
    for (int i = 0; i < 3; i++) {
      uint32_t c = in[i];
      uint32_t v = inverted ? c * k : (255 - c) * (255 - k);
      rgb[i] = (v + 127) / 255;
    }
    if (out_channels == 1) {
      out[0] = luma(rgb[0], rgb[1], rgb[2]);
    } else {
      for (int i = 0; i < 3; i++) out[i] = (uint8_t)rgb[i];
    }
  } else {
    memcpy(out, in, (size_t)out_channels);
  }
}

static cjpeg_status decode_inner(jpeg_job *job, const uint8_t *data, size_t size,
                                 const cjpeg_decode_options *options, uint8_t *out,
                                 size_t out_size, cjpeg_header *header, char *message,
                                 size_t capacity) {
  if (setjmp(job->jump)) return report(job, message, capacity);
  open_and_read_header(job, data, size);
  fill_header(&job->cinfo, header);
  uint64_t pixels = (uint64_t)header->width * header->height;
  if (options->max_pixels != 0 && pixels > options->max_pixels) {
    set_message(message, capacity,
                "%u×%u pixels exceeds the limit of %llu pixels (raise maxPixels to read it)",
                header->width, header->height, (unsigned long long)options->max_pixels);
    return CJPEG_ERR_TOO_LARGE;
  }
  uint32_t width, height;
  int32_t channels;
  if (!cjpeg_output_shape(header, options, &width, &height, &channels)) {
    set_message(message, capacity, "invalid options: channels %d, scale 1/%d",
                options->channels, options->scale_denom);
    return CJPEG_ERR_ARGUMENT;
  }
  size_t needed = (size_t)width * height * (size_t)channels;
  if (out == NULL || out_size < needed) {
    set_message(message, capacity, "output buffer holds %zu bytes, the image needs %zu",
                out_size, needed);
    return CJPEG_ERR_ARGUMENT;
  }

  struct jpeg_decompress_struct *cinfo = &job->cinfo;
  int cmyk = is_cmyk(header);
  // libjpeg converts YCCK to CMYK; CMYK to RGB is done here (libjpeg 6.2 has no such
  // conversion).
  cinfo->out_color_space = cmyk ? JCS_CMYK : channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  cinfo->scale_num = 1;
  cinfo->scale_denom = (unsigned int)options->scale_denom;
  cinfo->dct_method = JDCT_ISLOW;
  cinfo->do_fancy_upsampling = TRUE;
  jpeg_calc_output_dimensions(cinfo);
  int transposed = header->orientation >= 5;
  if ((transposed ? cinfo->output_height : cinfo->output_width) != width ||
      (transposed ? cinfo->output_width : cinfo->output_height) != height) {
    set_message(message, capacity, "libjpeg scaled %u×%u to %u×%u, expected %u×%u",
                header->width, header->height, cinfo->output_width, cinfo->output_height,
                width, height);
    return CJPEG_ERR_ARGUMENT;
  }

  job->phase = PHASE_PIXELS;
  jpeg_start_decompress(cinfo);
  size_t stored_channels = (size_t)cinfo->output_components;
  size_t stride = (size_t)cinfo->output_width * stored_channels;
  int direct = !cmyk && header->orientation == 1;
  uint8_t *target = out;
  if (!direct) {
    job->stored = (uint8_t *)malloc(stride * cinfo->output_height);
    if (job->stored == NULL) {
      set_message(message, capacity, "out of memory for %zu bytes of pixels",
                  stride * cinfo->output_height);
      return CJPEG_ERR_NO_MEMORY;
    }
    target = job->stored;
  }
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = target + (size_t)cinfo->output_scanline * stride;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  job->phase = PHASE_FINISH;
  jpeg_finish_decompress(cinfo);

  if (!direct) {
    size_t w = cinfo->output_width, h = cinfo->output_height;
    for (size_t y = 0; y < height; y++) {
      for (size_t x = 0; x < width; x++) {
        size_t sx, sy;
        source_of(header->orientation, x, y, w, h, &sx, &sy);
        convert_pixel(job->stored + sy * stride + sx * stored_channels, (int)stored_channels,
                      header->adobe, out + (y * width + x) * (size_t)channels, channels);
      }
    }
  }
  return CJPEG_OK;
}

cjpeg_status cjpeg_decode(const uint8_t *data, size_t size, const cjpeg_decode_options *options,
                          uint8_t *out, size_t out_size, cjpeg_header *header, char *message,
                          size_t message_capacity) {
  if (message != NULL && message_capacity > 0) message[0] = 0;
  if ((data == NULL && size != 0) || options == NULL) {
    set_message(message, message_capacity, "cjpeg_decode: NULL argument");
    return CJPEG_ERR_ARGUMENT;
  }
  cjpeg_status status = check_start(data, size, message, message_capacity);
  if (status != CJPEG_OK) return status;
  cjpeg_header local;
  jpeg_job job;
  memset(&job, 0, sizeof job);
  status = decode_inner(&job, data, size, options, out, out_size, header ? header : &local,
                        message, message_capacity);
  release(&job);
  return status;
}
