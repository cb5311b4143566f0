// libFuzzer harness for the libjpeg-turbo shim (Sources/CJPEG): header reading, then
// decoding to natural channels at full scale, to gray at 1/8 and to RGB at 1/2 (which
// covers EXIF orientation, CMYK conversion and DCT scaling), under a pixel limit. Any
// crash, hang, leak or sanitizer report is a bug. Build and run with
// Tests/Fuzz/run-jpeg-fuzzer.sh.
#include <stdint.h>
#include <stdlib.h>

#include "cjpeg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char message[CJPEG_MESSAGE_CAPACITY];
  cjpeg_header header;
  if (cjpeg_read_header(data, size, &header, message, sizeof message) != CJPEG_OK) return 0;
  // Small, so the fuzzer stays fast; the shim must refuse larger headers by itself.
  const uint64_t max_pixels = 1u << 20;
  const int32_t modes[3][2] = {{0, 1}, {1, 8}, {3, 2}};  // {channels, scale_denom}
  for (int i = 0; i < 3; i++) {
    cjpeg_decode_options options = {modes[i][0], modes[i][1], max_pixels};
    uint32_t width, height;
    int32_t channels;
    if (!cjpeg_output_shape(&header, &options, &width, &height, &channels)) abort();
    // Over the limit: the shim must refuse without touching the (absent) buffer.
    if ((uint64_t)header.width * header.height > max_pixels) {
      if (cjpeg_decode(data, size, &options, NULL, 0, NULL, message, sizeof message) !=
          CJPEG_ERR_TOO_LARGE)
        abort();
      continue;
    }
    size_t out_size = (size_t)width * height * (size_t)channels;
    uint8_t *out = malloc(out_size ? out_size : 1);
    if (!out) return 0;
    cjpeg_header decoded;
    cjpeg_decode(data, size, &options, out, out_size, &decoded, message, sizeof message);
    free(out);
  }
  return 0;
}
