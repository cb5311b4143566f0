// libFuzzer harness for the libpng shim (Sources/CPNG): header reading and decoding to
// gray, RGB and natural channels, with and without alpha compositing, under a pixel
// limit. Any crash, hang, leak or sanitizer report is a bug. Build and run with
// Tests/Fuzz/run-png-fuzzer.sh.
#include <stdint.h>
#include <stdlib.h>

#include "cpng.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char message[CPNG_MESSAGE_CAPACITY];
  cpng_header header;
  if (cpng_read_header(data, size, &header, message, sizeof message) != CPNG_OK) return 0;
  // The same limit the loader uses in spirit, kept small so the fuzzer stays fast.
  const uint64_t max_pixels = 1u << 20;
  if ((uint64_t)header.width * header.height > max_pixels) return 0;
  for (int32_t requested = 0; requested <= 3; requested += (requested == 0 ? 1 : 2)) {
    for (int32_t composite = 0; composite <= 1; composite++) {
      cpng_decode_options options = {requested, composite, {255, 128, 0}, max_pixels};
      int32_t channels = cpng_output_channels(&header, requested);
      size_t out_size = (size_t)header.width * header.height * (size_t)channels;
      uint8_t *out = malloc(out_size ? out_size : 1);
      if (!out) return 0;
      cpng_header decoded;
      cpng_decode(data, size, &options, out, out_size, &decoded, message, sizeof message);
      free(out);
    }
  }
  return 0;
}
