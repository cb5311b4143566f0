// Writes a 16×8 CMYK or YCCK JPEG (argv[1]: cmyk | ycck, argv[2]: output file) with
// libjpeg's compress side; cjpeg has no CMYK input. Part of make_jpeg_fixtures.sh.
// The samples are stored inverted, as Photoshop writes them with its Adobe APP14 marker
// (libjpeg writes that marker for CMYK and YCCK): 255 is no ink.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "cmyk") != 0 && strcmp(argv[1], "ycck") != 0)) {
    fprintf(stderr, "usage: write_cmyk cmyk|ycck OUT.jpg\n");
    return 2;
  }
  FILE *out = fopen(argv[2], "wb");
  if (out == NULL) return 1;
  struct jpeg_compress_struct cinfo;
  struct jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  jpeg_stdio_dest(&cinfo, out);
  cinfo.image_width = 16;
  cinfo.image_height = 8;
  cinfo.input_components = 4;
  cinfo.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&cinfo);
  jpeg_set_colorspace(&cinfo, strcmp(argv[1], "cmyk") == 0 ? JCS_CMYK : JCS_YCCK);
  jpeg_set_quality(&cinfo, 95, TRUE);
  for (int i = 0; i < cinfo.num_components; i++) {
    cinfo.comp_info[i].h_samp_factor = 1;
    cinfo.comp_info[i].v_samp_factor = 1;
  }
  jpeg_start_compress(&cinfo, TRUE);
  unsigned char row[16 * 4];
  while (cinfo.next_scanline < cinfo.image_height) {
    unsigned y = cinfo.next_scanline;
    for (unsigned x = 0; x < 16; x++) {
      // Left half: cyan ink (C = 200 of 255 ink), right half: magenta + some black.
      unsigned char ink[4] = {x < 8 ? 200 : 0, x < 8 ? 0 : 180, (unsigned char)(y * 20), x < 8 ? 0 : 60};
      for (int c = 0; c < 4; c++) row[x * 4 + c] = (unsigned char)(255 - ink[c]);
    }
    JSAMPROW pointer = row;
    jpeg_write_scanlines(&cinfo, &pointer, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  fclose(out);
  return 0;
}
