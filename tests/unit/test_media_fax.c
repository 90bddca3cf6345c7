/*
 * test_media_fax.c - T.30 fax over G.711 through the engine: one session
 * sends a 2-page TIFF, another receives it, over RTP on 127.0.0.1; both
 * report MEDIA_EV_FAX_DONE with 2 pages, and the received pages hold the
 * same image rows as the sent ones.
 */
#include "media_harness.h"

#include <tiffio.h>

#define WIDTH 1728
#define ROWS  240

static int setup(void **st)
{
    h_init(2);
    return 0;
}

static int teardown(void **st)
{
    h_done();
    return 0;
}

/* Page p: black bars whose position depends on the page and the row. */
static void page_row(int page, int row, uint8_t *line)
{
    memset(line, 0, WIDTH / 8);
    if ((row / 20) % 2 == page % 2) {
        int from = 100 + page * 300 + (row % 20) * 8;
        for (int x = from; x < from + 400 && x < WIDTH; x++)
            line[x / 8] |= (uint8_t)(0x80 >> (x % 8));
    }
    if (row >= 100 && row < 140) /* a page-specific block */
        for (int x = 1000 + page * 200; x < 1100 + page * 200; x++)
            line[x / 8] |= (uint8_t)(0x80 >> (x % 8));
}

static void write_tiff(const char *path)
{
    TIFF *t = TIFFOpen(path, "w");
    assert_non_null(t);
    uint8_t line[WIDTH / 8];
    for (int p = 0; p < 2; p++) {
        TIFFSetField(t, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE);
        TIFFSetField(t, TIFFTAG_IMAGEWIDTH, WIDTH);
        TIFFSetField(t, TIFFTAG_IMAGELENGTH, ROWS);
        TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 1);
        TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
        TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_CCITT_T4);
        TIFFSetField(t, TIFFTAG_GROUP3OPTIONS, GROUP3OPT_FILLBITS);
        TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISWHITE);
        TIFFSetField(t, TIFFTAG_FILLORDER, FILLORDER_LSB2MSB);
        TIFFSetField(t, TIFFTAG_XRESOLUTION, 204.0f);
        TIFFSetField(t, TIFFTAG_YRESOLUTION, 196.0f);
        TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH);
        TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, ROWS);
        TIFFSetField(t, TIFFTAG_PAGENUMBER, p, 2);
        for (int r = 0; r < ROWS; r++) {
            page_row(p, r, line);
            assert_int_equal(TIFFWriteScanline(t, line, (uint32_t)r, 0), 1);
        }
        TIFFWriteDirectory(t);
    }
    TIFFClose(t);
}

static void fax_two_pages_through_the_engine(void **st)
{
    char src[512], dst[512];
    snprintf(src, sizeof src, "%s/out.tiff", h_dir);
    snprintf(dst, sizeof dst, "%s/in.tiff", h_dir);
    write_tiff(src);
    media_id tx, rx;
    int ptx, prx;
    assert_int_equal(media_session_open(0, &tx, &ptx), 0);
    assert_int_equal(media_session_open(0, &rx, &prx), 0);
    struct media_remote r = {.pt = MEDIA_PCMA, .send = true, .recv = true};
    snprintf(r.ip, sizeof r.ip, "127.0.0.1");
    r.port = prx;
    assert_int_equal(media_session_set_remote(tx, &r), 0);
    r.port = ptx;
    assert_int_equal(media_session_set_remote(rx, &r), 0);
    assert_int_equal(media_fax_receive(rx, dst, 2), 0);
    assert_int_equal(media_fax_send(tx, src, 1), 0);
    assert_true(h_wait_event(tx, MEDIA_EV_FAX_DONE, 1, 120000));
    assert_true(h_wait_event(rx, MEDIA_EV_FAX_DONE, 1, 10000));
    const struct media_event *et = h_find(tx, MEDIA_EV_FAX_DONE);
    const struct media_event *er = h_find(rx, MEDIA_EV_FAX_DONE);
    assert_int_equal(et->reason, 0);
    assert_int_equal(er->reason, 0);
    assert_int_equal(et->tag, 1);
    assert_int_equal(er->tag, 2);
    assert_int_equal(et->pages, 2);
    assert_int_equal(er->pages, 2);
    assert_int_equal(er->resolution, 204);
    /* the received pages hold the sent rows */
    TIFF *t = TIFFOpen(dst, "r");
    assert_non_null(t);
    int pages = 0;
    uint8_t want[WIDTH / 8];
    uint8_t *got = malloc((size_t)TIFFScanlineSize(t) + WIDTH / 8);
    do {
        uint32_t w = 0, h = 0;
        TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
        TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
        assert_int_equal(w, WIDTH);
        assert_true(h >= ROWS / 2); /* standard or fine resolution */
        int step = h >= ROWS ? 1 : 2;
        int bad = 0;
        for (uint32_t row = 0; row < h && row * (uint32_t)step < ROWS; row++) {
            assert_int_equal(TIFFReadScanline(t, got, row, 0), 1);
            page_row(pages, (int)row * step, want);
            if (memcmp(got, want, WIDTH / 8)) bad++;
        }
        assert_int_equal(bad, 0);
        pages++;
    } while (TIFFReadDirectory(t));
    free(got);
    TIFFClose(t);
    assert_int_equal(pages, 2);
    media_session_close(tx);
    media_session_close(rx);
    assert_true(h_wait_event(rx, MEDIA_EV_CLOSED, 1, 1000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(fax_two_pages_through_the_engine, h_reset),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
