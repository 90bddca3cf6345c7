/*
 * test_media_faximage.c - fax documents: any TIFF becomes a fax-ready one
 * (standard-resolution rows doubled, pictures scaled to 1728 pixels and cut
 * at mid grey), pages render as PNG and GIF, and what is not a usable TIFF
 * is refused with a reason and leaves no file behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/cw.h"
#include "media/media.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <unistd.h>
#include <zlib.h>

static char dir[256];

static int setup(void **st)
{
    snprintf(dir, sizeof dir, "/tmp/cw-faximage-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **st)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *at(const char *name)
{
    static char buf[4][320];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* A bilevel page: black where row is in [r0, r1) and column in [c0, c1). */
static void write_bilevel(const char *path, int pages, uint32_t w, uint32_t h, float yres,
                          uint32_t r0, uint32_t r1, uint32_t c0, uint32_t c1)
{
    TIFF *t = TIFFOpen(path, "w");
    assert_non_null(t);
    uint8_t *line = calloc(1, (w + 7) / 8);
    for (int p = 0; p < pages; p++) {
        TIFFSetField(t, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE);
        TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
        TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
        TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 1);
        TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
        TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_CCITT_T4);
        TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISWHITE);
        TIFFSetField(t, TIFFTAG_XRESOLUTION, 204.0f);
        TIFFSetField(t, TIFFTAG_YRESOLUTION, yres);
        TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH);
        TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, h);
        for (uint32_t r = 0; r < h; r++) {
            memset(line, 0, (w + 7) / 8);
            if (r >= r0 && r < r1)
                for (uint32_t x = c0; x < c1; x++)
                    line[x / 8] |= (uint8_t)(0x80 >> (x % 8));
            assert_int_equal(TIFFWriteScanline(t, line, r, 0), 1);
        }
        TIFFWriteDirectory(t);
    }
    free(line);
    TIFFClose(t);
}

/* An 8-bit grey picture, 100 dpi, white with a black box. */
static void write_grey(const char *path, uint32_t w, uint32_t h, uint32_t r0, uint32_t r1,
                       uint32_t c0, uint32_t c1)
{
    TIFF *t = TIFFOpen(path, "w");
    assert_non_null(t);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_LZW);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_XRESOLUTION, 100.0f);
    TIFFSetField(t, TIFFTAG_YRESOLUTION, 100.0f);
    TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 16);
    uint8_t *line = malloc(w);
    for (uint32_t r = 0; r < h; r++) {
        for (uint32_t x = 0; x < w; x++)
            line[x] = (r >= r0 && r < r1 && x >= c0 && x < c1) ? 20 : 235;
        assert_int_equal(TIFFWriteScanline(t, line, r, 0), 1);
    }
    free(line);
    TIFFClose(t);
}

/* Rows of page p of a fax-ready TIFF holding any black; checks its shape. */
static void black_rows(const char *path, int page, uint32_t *rows, uint32_t *first, uint32_t *count,
                       uint32_t *x0, uint32_t *x1)
{
    TIFF *t = TIFFOpen(path, "r");
    assert_non_null(t);
    assert_true(TIFFSetDirectory(t, (tdir_t)page));
    uint32_t w = 0, h = 0;
    uint16_t comp = 0, bps = 0;
    float xr = 0, yr = 0;
    TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
    TIFFGetField(t, TIFFTAG_COMPRESSION, &comp);
    TIFFGetField(t, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetField(t, TIFFTAG_XRESOLUTION, &xr);
    TIFFGetField(t, TIFFTAG_YRESOLUTION, &yr);
    assert_int_equal(w, 1728);
    assert_int_equal(bps, 1);
    assert_int_equal(comp, COMPRESSION_CCITT_T4);
    assert_true(xr > 203 && xr < 205 && yr > 195 && yr < 197);
    uint8_t line[216];
    *first = UINT32_MAX;
    *count = 0;
    *x0 = UINT32_MAX;
    *x1 = 0;
    for (uint32_t r = 0; r < h; r++) {
        assert_int_equal(TIFFReadScanline(t, line, r, 0), 1);
        bool any = false;
        for (uint32_t x = 0; x < 1728; x++)
            if (line[x / 8] & (0x80 >> (x % 8))) {
                any = true;
                if (x < *x0) *x0 = x;
                if (x + 1 > *x1) *x1 = x + 1;
            }
        if (any) {
            if (*first == UINT32_MAX) *first = r;
            (*count)++;
        }
    }
    *rows = h;
    TIFFClose(t);
}

static void standard_resolution_rows_are_doubled(void **st)
{
    write_bilevel(at("std.tiff"), 2, 1728, 200, 98.0f, 50, 70, 100, 300);
    int pages = 0;
    char err[200] = "";
    assert_int_equal(media_fax_prepare(at("std.tiff"), at("std-out.tiff"), &pages, err, sizeof err),
                     0);
    assert_int_equal(pages, 2);
    uint32_t rows, first, count, x0, x1;
    for (int p = 0; p < 2; p++) {
        black_rows(at("std-out.tiff"), p, &rows, &first, &count, &x0, &x1);
        assert_int_equal(rows, 400);
        assert_int_equal(first, 100);
        assert_int_equal(count, 40);
        assert_int_equal(x0, 100);
        assert_int_equal(x1, 300);
    }
    int n = 0;
    assert_int_equal(media_fax_pages(at("std-out.tiff"), &n), 0);
    assert_int_equal(n, 2);
}

static void pictures_are_scaled_to_the_fax_width(void **st)
{
    /* 864 x 600 at 100 dpi: doubled across to 1728; rows at 196 dpi keep the aspect */
    write_grey(at("grey.tiff"), 864, 600, 100, 200, 200, 400);
    int pages = 0;
    char err[200] = "";
    assert_int_equal(
        media_fax_prepare(at("grey.tiff"), at("grey-out.tiff"), &pages, err, sizeof err), 0);
    assert_int_equal(pages, 1);
    uint32_t rows, first, count, x0, x1;
    black_rows(at("grey-out.tiff"), 0, &rows, &first, &count, &x0, &x1);
    double sy = 0.5 * 204.0 / 196.0; /* source rows per fax row */
    assert_true(abs((int)rows - (int)(600 / sy + 0.5)) <= 1);
    assert_true(abs((int)first - (int)(100 / sy)) <= 2);
    assert_true(abs((int)count - (int)(100 / sy)) <= 2);
    assert_true(x0 >= 399 && x0 <= 401 && x1 >= 799 && x1 <= 801);
}

static void bad_documents_are_refused_and_leave_nothing(void **st)
{
    char err[200];
    int pages = 0;
    FILE *f = fopen(at("text.tiff"), "w");
    fputs("this is not a picture", f);
    fclose(f);
    err[0] = 0;
    assert_int_equal(media_fax_prepare(at("text.tiff"), at("x.tiff"), &pages, err, sizeof err),
                     CW_EINVAL);
    assert_string_equal(err, "not a TIFF file");
    /* a TIFF header whose directory points past the end */
    f = fopen(at("cut.tiff"), "wb");
    fwrite("II*\0\x10\x27\0\0", 1, 8, f);
    fclose(f);
    err[0] = 0;
    assert_int_equal(media_fax_prepare(at("cut.tiff"), at("x.tiff"), &pages, err, sizeof err),
                     CW_EINVAL);
    assert_true(strlen(err) > 0);
    assert_int_equal(access(at("x.tiff"), F_OK), -1);
    assert_int_equal(access(at("x.tiff.part"), F_OK), -1);
    assert_int_equal(media_fax_prepare(at("missing.tiff"), at("x.tiff"), &pages, err, sizeof err),
                     CW_EINVAL);
    /* more pages than a fax takes */
    write_bilevel(at("long.tiff"), 101, 64, 4, 196.0f, 0, 1, 0, 8);
    err[0] = 0;
    assert_int_equal(media_fax_prepare(at("long.tiff"), at("x.tiff"), &pages, err, sizeof err),
                     CW_EINVAL);
    assert_non_null(strstr(err, "100 pages"));
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void pages_render_as_png_and_gif(void **st)
{
    write_bilevel(at("r.tiff"), 2, 1728, 100, 98.0f, 10, 20, 0, 1728);
    unsigned char *out = NULL;
    size_t len = 0;
    char err[200];
    assert_int_equal(media_fax_render(at("r.tiff"), 1, "png", &out, &len, err, sizeof err), 0);
    assert_memory_equal(out, "\x89PNG\r\n\x1a\n", 8);
    assert_int_equal(be32(out + 16), 1728);
    assert_int_equal(be32(out + 20), 200); /* standard resolution shown at its true height */
    assert_int_equal(out[24], 1);          /* 1 bit per pixel */
    uLong crc = crc32(0, out + 12, 17);    /* IHDR type and body */
    assert_int_equal((uint32_t)crc, be32(out + 29));
    free(out);
    assert_int_equal(media_fax_render(at("r.tiff"), 0, "gif", &out, &len, err, sizeof err), 0);
    assert_memory_equal(out, "GIF89a", 6);
    assert_int_equal(out[6] | out[7] << 8, 1728);
    assert_int_equal(out[8] | out[9] << 8, 200);
    assert_int_equal(out[len - 1], ';');
    free(out);
    assert_int_equal(media_fax_render(at("r.tiff"), 2, "png", &out, &len, err, sizeof err),
                     CW_ENOENT);
    assert_int_equal(media_fax_render(at("r.tiff"), 0, "bmp", &out, &len, err, sizeof err),
                     CW_EINVAL);
    assert_int_equal(media_fax_render(at("nothing.tiff"), 0, "png", &out, &len, err, sizeof err),
                     CW_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(standard_resolution_rows_are_doubled),
        cmocka_unit_test(pictures_are_scaled_to_the_fax_width),
        cmocka_unit_test(bad_documents_are_refused_and_leave_nothing),
        cmocka_unit_test(pages_render_as_png_and_gif),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
