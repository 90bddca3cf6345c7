/*
 * faximage.c - fax documents: any TIFF in, a fax-ready TIFF out, and pages
 * of a fax as PNG or GIF images for viewing in a browser.
 *
 * A fax-ready TIFF is what the T.30 engine sends without further thought:
 * bilevel, 1728 pixels wide (A4 at 204 dpi), 196 dpi rows, T.4 2-D coded,
 * one directory per page. Pictures are reduced by area averaging and cut
 * at mid grey; documents already in fax shape are copied row by row.
 * PNG is written with zlib; GIF with an LZW coder of our own.
 *
 * Blocking file work: callers run it off the core loop (work_submit()).
 * Touches no state outside its arguments.
 */
#include "base/cw.h"
#include "media/media.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <zlib.h>

#define FAX_WIDTH     1728
#define FAX_XRES      204.0f
#define FAX_YRES      196.0f
#define MAX_PAGES     100
#define MAX_ROWS      4096       /* a page longer than about 53 cm is cut */
#define MAX_SRC_PIXEL 40000000.0 /* bigger pictures are refused, not scaled */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return CW_EINVAL;
}

/* libtiff reports through global handlers: keep them quiet, callers report. */
static void tiff_quiet(const char *module, const char *fmt, va_list ap)
{
    (void)module, (void)fmt, (void)ap;
}

static void tiff_silence(void)
{
    TIFFSetErrorHandler(tiff_quiet);
    TIFFSetWarningHandler(tiff_quiet);
}

/* Resolution of the current directory in dots per inch (0 when not given). */
static void resolution_dpi(TIFF *t, float *x, float *y)
{
    float xr = 0, yr = 0;
    uint16_t unit = RESUNIT_INCH;
    TIFFGetField(t, TIFFTAG_XRESOLUTION, &xr);
    TIFFGetField(t, TIFFTAG_YRESOLUTION, &yr);
    TIFFGetFieldDefaulted(t, TIFFTAG_RESOLUTIONUNIT, &unit);
    if (unit == RESUNIT_CENTIMETER) xr *= 2.54f, yr *= 2.54f;
    if (unit == RESUNIT_NONE) xr = yr = 0;
    *x = xr;
    *y = yr;
}

static bool is_bilevel(TIFF *t)
{
    uint16_t bps = 1, spp = 1;
    TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
    return bps == 1 && spp == 1;
}

static bool black_is_one(TIFF *t)
{
    uint16_t ph = PHOTOMETRIC_MINISWHITE;
    TIFFGetFieldDefaulted(t, TIFFTAG_PHOTOMETRIC, &ph);
    return ph != PHOTOMETRIC_MINISBLACK;
}

/*
 * The current page as rows of 1-bit pixels, 1 = black, MSB first, stride
 * (w + 7) / 8. The caller frees *bits.
 */
static int page_bits(TIFF *t, uint32_t *w_out, uint32_t *h_out, uint8_t **bits, char *err,
                     size_t errlen)
{
    uint32_t w = 0, h = 0;
    if (!TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h) ||
        w == 0 || h == 0 || w > 20000 || h > 30000)
        return fail(err, errlen, "a page has no usable size (%ux%u)", w, h);
    size_t stride = (w + 7) / 8;
    uint8_t *out = calloc(stride, h);
    if (!out) return fail(err, errlen, "out of memory for a %ux%u page", w, h);
    if (is_bilevel(t)) {
        tmsize_t sl = TIFFScanlineSize(t);
        uint8_t *line = malloc((size_t)(sl > (tmsize_t)stride ? sl : (tmsize_t)stride));
        bool invert = !black_is_one(t);
        for (uint32_t r = 0; r < h; r++) {
            if (!line || TIFFReadScanline(t, line, r, 0) != 1) {
                free(line);
                free(out);
                return fail(err, errlen, "page row %u cannot be read", r);
            }
            for (size_t i = 0; i < stride; i++)
                out[r * stride + i] = invert ? (uint8_t)~line[i] : line[i];
            if (w % 8) out[r * stride + stride - 1] &= (uint8_t)(0xff00 >> (w % 8));
        }
        free(line);
    } else {
        if ((double)w * h > MAX_SRC_PIXEL) {
            free(out);
            return fail(err, errlen, "a %ux%u picture is too large for a fax", w, h);
        }
        uint32_t *rgba = _TIFFmalloc((tmsize_t)((size_t)w * h * sizeof *rgba));
        if (!rgba || !TIFFReadRGBAImageOriented(t, w, h, rgba, ORIENTATION_TOPLEFT, 0)) {
            if (rgba) _TIFFfree(rgba);
            free(out);
            return fail(err, errlen, "a page cannot be decoded");
        }
        for (uint32_t r = 0; r < h; r++)
            for (uint32_t x = 0; x < w; x++) {
                uint32_t p = rgba[(size_t)r * w + x];
                unsigned lum = (TIFFGetR(p) * 299 + TIFFGetG(p) * 587 + TIFFGetB(p) * 114) / 1000;
                if (lum < 128) out[r * stride + x / 8] |= (uint8_t)(0x80 >> (x % 8));
            }
        _TIFFfree(rgba);
    }
    *w_out = w;
    *h_out = h;
    *bits = out;
    return CW_OK;
}

static inline int bit_at(const uint8_t *bits, size_t stride, uint32_t x, uint32_t y)
{
    return (bits[y * stride + x / 8] >> (7 - x % 8)) & 1;
}

/*
 * Fit a page to the fax shape: 1728 pixels wide, rows at 196 dpi. A page
 * that already is 1728 wide at fax resolution keeps its pixels (standard
 * 98 dpi rows are doubled); anything else is scaled by area averaging.
 */
static int page_to_fax(TIFF *t, uint8_t **fax, uint32_t *rows, char *err, size_t errlen)
{
    uint32_t w, h;
    uint8_t *src;
    int rc = page_bits(t, &w, &h, &src, err, errlen);
    if (rc) return rc;
    float xr, yr;
    resolution_dpi(t, &xr, &yr);
    if (xr <= 0 || yr <= 0) xr = yr = 0;
    size_t sstride = (w + 7) / 8, fstride = FAX_WIDTH / 8;
    if (w == FAX_WIDTH && xr > 190 && xr < 215 && yr > 90 && yr < 210) {
        int rep = yr < 150 ? 2 : 1;
        uint32_t n = CW_MIN(h * (uint32_t)rep, (uint32_t)MAX_ROWS);
        uint8_t *out = calloc(fstride, n);
        if (!out) {
            free(src);
            return fail(err, errlen, "out of memory");
        }
        for (uint32_t r = 0; r < n; r++)
            memcpy(out + r * fstride, src + (r / (uint32_t)rep) * sstride, fstride);
        free(src);
        *fax = out;
        *rows = n;
        return CW_OK;
    }
    /* source pixels per output pixel across, and per output row down */
    double sx = (double)w / FAX_WIDTH;
    double aspect = xr > 0 ? (double)xr / yr : 1.0; /* source pixel height / width */
    double sy = sx * (FAX_XRES / FAX_YRES) / aspect;
    uint32_t n = (uint32_t)((double)h / sy + 0.5);
    if (n < 1) n = 1;
    if (n > MAX_ROWS) n = MAX_ROWS;
    uint8_t *out = calloc(fstride, n);
    if (!out) {
        free(src);
        return fail(err, errlen, "out of memory");
    }
    for (uint32_t r = 0; r < n; r++) {
        uint32_t y0 = (uint32_t)(r * sy), y1 = (uint32_t)((r + 1) * sy);
        if (y0 >= h) y0 = h - 1;
        if (y1 <= y0) y1 = y0 + 1;
        if (y1 > h) y1 = h;
        for (uint32_t x = 0; x < FAX_WIDTH; x++) {
            uint32_t x0 = (uint32_t)(x * sx), x1 = (uint32_t)((x + 1) * sx);
            if (x0 >= w) x0 = w - 1;
            if (x1 <= x0) x1 = x0 + 1;
            if (x1 > w) x1 = w;
            unsigned black = 0, total = 0;
            for (uint32_t yy = y0; yy < y1; yy++)
                for (uint32_t xx = x0; xx < x1; xx++) {
                    black += (unsigned)bit_at(src, sstride, xx, yy);
                    total++;
                }
            if (black * 2 >= total && black) out[r * fstride + x / 8] |= (uint8_t)(0x80 >> (x % 8));
        }
    }
    free(src);
    *fax = out;
    *rows = n;
    return CW_OK;
}

static int write_fax_page(TIFF *o, const uint8_t *bits, uint32_t rows, int page, int npages)
{
    TIFFSetField(o, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE);
    TIFFSetField(o, TIFFTAG_IMAGEWIDTH, (uint32_t)FAX_WIDTH);
    TIFFSetField(o, TIFFTAG_IMAGELENGTH, rows);
    TIFFSetField(o, TIFFTAG_BITSPERSAMPLE, 1);
    TIFFSetField(o, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(o, TIFFTAG_COMPRESSION, COMPRESSION_CCITT_T4);
    TIFFSetField(o, TIFFTAG_GROUP3OPTIONS, GROUP3OPT_2DENCODING | GROUP3OPT_FILLBITS);
    TIFFSetField(o, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISWHITE);
    TIFFSetField(o, TIFFTAG_FILLORDER, FILLORDER_LSB2MSB);
    TIFFSetField(o, TIFFTAG_XRESOLUTION, FAX_XRES);
    TIFFSetField(o, TIFFTAG_YRESOLUTION, FAX_YRES);
    TIFFSetField(o, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH);
    TIFFSetField(o, TIFFTAG_ROWSPERSTRIP, rows);
    TIFFSetField(o, TIFFTAG_PAGENUMBER, (uint16_t)page, (uint16_t)npages);
    uint8_t line[FAX_WIDTH / 8];
    for (uint32_t r = 0; r < rows; r++) {
        memcpy(line, bits + r * (FAX_WIDTH / 8), sizeof line);
        if (TIFFWriteScanline(o, line, r, 0) != 1) return CW_EIO;
    }
    return TIFFWriteDirectory(o) ? CW_OK : CW_EIO;
}

int media_fax_pages(const char *tiff, int *pages)
{
    tiff_silence();
    TIFF *t = TIFFOpen(tiff, "r");
    if (!t) return CW_EINVAL;
    int n = 0;
    do
        n++;
    while (n <= MAX_PAGES * 10 && TIFFReadDirectory(t));
    TIFFClose(t);
    *pages = n;
    return CW_OK;
}

int media_fax_prepare(const char *src, const char *dst, int *pages, char *err, size_t errlen)
{
    tiff_silence();
    FILE *f = fopen(src, "rb");
    unsigned char magic[4] = {0};
    size_t got = f ? fread(magic, 1, 4, f) : 0;
    if (f) fclose(f);
    if (got != 4 || !((magic[0] == 'I' && magic[1] == 'I' && magic[2] == 42 && !magic[3]) ||
                      (magic[0] == 'M' && magic[1] == 'M' && !magic[2] && magic[3] == 42)))
        return fail(err, errlen, "not a TIFF file");
    TIFF *t = TIFFOpen(src, "r");
    if (!t) return fail(err, errlen, "the TIFF file cannot be read");
    int n = 0;
    do
        n++;
    while (n <= MAX_PAGES && TIFFReadDirectory(t));
    if (n > MAX_PAGES) {
        TIFFClose(t);
        return fail(err, errlen, "more than %d pages", MAX_PAGES);
    }
    char *tmp = cw_sprintf("%s.part", dst);
    TIFF *o = TIFFOpen(tmp, "w");
    if (!o) {
        TIFFClose(t);
        free(tmp);
        return fail(err, errlen, "cannot write the fax document");
    }
    int rc = CW_OK;
    for (int p = 0; p < n && rc == CW_OK; p++) {
        uint8_t *bits = NULL;
        uint32_t rows = 0;
        if (!TIFFSetDirectory(t, (tdir_t)p)) {
            rc = fail(err, errlen, "page %d cannot be read", p + 1);
            break;
        }
        rc = page_to_fax(t, &bits, &rows, err, errlen);
        if (rc == CW_OK && write_fax_page(o, bits, rows, p, n))
            rc = fail(err, errlen, "page %d could not be written", p + 1);
        else if (rc != CW_OK && err && errlen) {
            char inner[200];
            cw_strlcpy(inner, err, sizeof inner);
            snprintf(err, errlen, "page %d: %s", p + 1, inner);
        }
        free(bits);
    }
    TIFFClose(t);
    TIFFClose(o);
    if (rc == CW_OK && rename(tmp, dst)) rc = fail(err, errlen, "cannot store the fax document");
    if (rc != CW_OK) remove(tmp);
    free(tmp);
    if (rc == CW_OK && pages) *pages = n;
    return rc;
}

/* ---- PNG (1-bit greyscale, zlib) ---- */

static void put32(cw_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    cw_buf_append(b, x, 4);
}

static void png_chunk(cw_buf *b, const char *type, const unsigned char *data, size_t len)
{
    put32(b, (uint32_t)len);
    size_t at = b->len;
    cw_buf_append(b, type, 4);
    if (len) cw_buf_append(b, data, len);
    uLong crc = crc32(0L, (const Bytef *)b->data + at, (uInt)(len + 4));
    put32(b, (uint32_t)crc);
}

static int png_encode(const uint8_t *bits, uint32_t w, uint32_t h, cw_buf *out)
{
    size_t stride = (w + 7) / 8;
    size_t rawlen = (stride + 1) * h;
    unsigned char *raw = malloc(rawlen);
    if (!raw) return CW_ENOMEM;
    for (uint32_t r = 0; r < h; r++) {
        raw[r * (stride + 1)] = 0;          /* filter: none */
        for (size_t i = 0; i < stride; i++) /* PNG grey: 0 = black */
            raw[r * (stride + 1) + 1 + i] = (unsigned char)~bits[r * stride + i];
    }
    uLongf zlen = compressBound((uLong)rawlen);
    unsigned char *z = malloc(zlen);
    if (!z || compress2(z, &zlen, raw, (uLong)rawlen, 6) != Z_OK) {
        free(raw);
        free(z);
        return CW_ENOMEM;
    }
    free(raw);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    cw_buf_append(out, sig, 8);
    unsigned char ihdr[13] = {(unsigned char)(w >> 24),
                              (unsigned char)(w >> 16),
                              (unsigned char)(w >> 8),
                              (unsigned char)w,
                              (unsigned char)(h >> 24),
                              (unsigned char)(h >> 16),
                              (unsigned char)(h >> 8),
                              (unsigned char)h,
                              1,
                              0,
                              0,
                              0,
                              0};
    png_chunk(out, "IHDR", ihdr, 13);
    png_chunk(out, "IDAT", z, zlen);
    png_chunk(out, "IEND", NULL, 0);
    free(z);
    return CW_OK;
}

/* ---- GIF (two colours, LZW) ---- */

struct lzw_out {
    cw_buf *b;
    unsigned char block[255];
    int nblock;
    uint32_t acc;
    int nacc;
};

static void lzw_byte(struct lzw_out *o, unsigned char c)
{
    o->block[o->nblock++] = c;
    if (o->nblock == 255) {
        unsigned char n = 255;
        cw_buf_append(o->b, &n, 1);
        cw_buf_append(o->b, o->block, 255);
        o->nblock = 0;
    }
}

static void lzw_code(struct lzw_out *o, int code, int size)
{
    o->acc |= (uint32_t)code << o->nacc;
    o->nacc += size;
    while (o->nacc >= 8) {
        lzw_byte(o, (unsigned char)(o->acc & 0xff));
        o->acc >>= 8;
        o->nacc -= 8;
    }
}

static void lzw_flush(struct lzw_out *o)
{
    if (o->nacc > 0) lzw_byte(o, (unsigned char)(o->acc & 0xff));
    if (o->nblock) {
        unsigned char n = (unsigned char)o->nblock;
        cw_buf_append(o->b, &n, 1);
        cw_buf_append(o->b, o->block, (size_t)o->nblock);
    }
    unsigned char end = 0;
    cw_buf_append(o->b, &end, 1);
}

#define LZW_MIN   2 /* GIF's smallest code size; our pixels use 0 and 1 */
#define LZW_CLEAR (1 << LZW_MIN)
#define LZW_EOI   (LZW_CLEAR + 1)
#define LZW_MAX   4096

/* The LZW table as a trie: next[code][pixel] is the code for code + pixel. */
static int gif_encode(const uint8_t *bits, uint32_t w, uint32_t h, cw_buf *out)
{
    int16_t(*next)[4] = malloc(sizeof *next * LZW_MAX);
    if (!next) return CW_ENOMEM;
    unsigned char hdr[13] = {'G',
                             'I',
                             'F',
                             '8',
                             '9',
                             'a',
                             (unsigned char)w,
                             (unsigned char)(w >> 8),
                             (unsigned char)h,
                             (unsigned char)(h >> 8),
                             0x80,
                             0,
                             0};
    cw_buf_append(out, hdr, 13);
    static const unsigned char palette[6] = {255, 255, 255, 0, 0, 0}; /* 0 white, 1 black */
    cw_buf_append(out, palette, 6);
    unsigned char desc[11] = {',',
                              0,
                              0,
                              0,
                              0,
                              (unsigned char)w,
                              (unsigned char)(w >> 8),
                              (unsigned char)h,
                              (unsigned char)(h >> 8),
                              0,
                              LZW_MIN};
    cw_buf_append(out, desc, 11);
    struct lzw_out o = {.b = out};
    int size = LZW_MIN + 1, avail = LZW_EOI + 1;
    memset(next, -1, sizeof *next * LZW_MAX);
    lzw_code(&o, LZW_CLEAR, size);
    size_t stride = (w + 7) / 8;
    int cur = -1;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            int px = bit_at(bits, stride, x, y);
            if (cur < 0) {
                cur = px;
                continue;
            }
            if (next[cur][px] >= 0) {
                cur = next[cur][px];
                continue;
            }
            lzw_code(&o, cur, size);
            if (avail < LZW_MAX) {
                next[cur][px] = (int16_t)avail;
                if (avail == (1 << size) && size < 12) size++;
                avail++;
            } else { /* table full: start over */
                lzw_code(&o, LZW_CLEAR, size);
                memset(next, -1, sizeof *next * LZW_MAX);
                size = LZW_MIN + 1;
                avail = LZW_EOI + 1;
            }
            cur = px;
        }
    if (cur >= 0) lzw_code(&o, cur, size);
    lzw_code(&o, LZW_EOI, size);
    lzw_flush(&o);
    unsigned char trailer = ';';
    cw_buf_append(out, &trailer, 1);
    free(next);
    return CW_OK;
}

int media_fax_render(const char *tiff, int page, const char *format, unsigned char **out,
                     size_t *outlen, char *err, size_t errlen)
{
    bool png = !strcmp(format, "png");
    if (!png && strcmp(format, "gif")) return fail(err, errlen, "format must be png or gif");
    tiff_silence();
    TIFF *t = TIFFOpen(tiff, "r");
    if (!t) return fail(err, errlen, "the fax document cannot be read");
    if (page < 0 || !TIFFSetDirectory(t, (tdir_t)page)) {
        TIFFClose(t);
        if (err && errlen) snprintf(err, errlen, "no page %d", page + 1);
        return CW_ENOENT;
    }
    uint32_t w, h;
    uint8_t *bits;
    int rc = page_bits(t, &w, &h, &bits, err, errlen);
    float xr, yr;
    resolution_dpi(t, &xr, &yr);
    TIFFClose(t);
    if (rc) return rc;
    if (w > 65535 || h > 32767) {
        free(bits);
        return fail(err, errlen, "the page is too large to show");
    }
    uint32_t rows = h;
    if (yr > 0 && xr > 0 && yr * 1.5f < xr && h * 2 <= 32767) { /* standard resolution */
        size_t stride = (w + 7) / 8;
        uint8_t *tall = malloc(stride * h * 2);
        if (!tall) {
            free(bits);
            return CW_ENOMEM;
        }
        for (uint32_t r = 0; r < h * 2; r++)
            memcpy(tall + r * stride, bits + (r / 2) * stride, stride);
        free(bits);
        bits = tall;
        rows = h * 2;
    }
    cw_buf b;
    cw_buf_init(&b);
    rc = png ? png_encode(bits, w, rows, &b) : gif_encode(bits, w, rows, &b);
    free(bits);
    if (rc) {
        cw_buf_free(&b);
        return fail(err, errlen, "out of memory");
    }
    *out = (unsigned char *)b.data;
    *outlen = b.len;
    return CW_OK;
}
