/* JPEG / PNG / WebP -> decoded_image, with the Pillow mode and the exact pixels
 * PIL.Image.open(...).load() produces (Pillow 13: JpegImagePlugin.py,
 * PngImagePlugin.py, WebPImagePlugin.py and the C decoders behind them).
 *
 * Pixel layouts (interleaved, rows packed):
 *   1     one byte per pixel, 0 or 255          L, P  one byte per pixel
 *   LA    L, A                                   RGB   R, G, B
 *   RGBA  R, G, B, A (not premultiplied)         CMYK  C, M, Y, K (Pillow polarity)
 *   I;16  uint16_t, host byte order              I     int32_t, host byte order
 *
 * Every decoder checks the image size against the pixel limit before it
 * allocates the pixel buffer, and turns codec errors into VT_ERR_FORMAT with the
 * codec's own message; codec warnings are silenced, as in Pillow. No globals:
 * all codec state lives in a per-call decoder struct, so decoding is
 * thread-safe. */
#include <ctype.h>
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <webp/decode.h>
#include <zlib.h>

#include "core/error.h"
#include "io/image/image.h"

#define COUNT_OF(array) (sizeof(array) / sizeof((array)[0]))

/* libjpeg-turbo's own per-side limit; we apply it to every format. */
#define IMAGE_MAX_SIDE 65500
/* Progressive JPEGs can hold thousands of tiny scans that each re-walk the whole
 * coefficient buffer (a classic way to make a small file take minutes). Real
 * encoders write about 10; libjpeg-turbo's own tools suggest capping at 500. */
#define JPEG_MAX_SCANS 500
/* We read the whole file into memory; refuse anything absurdly large. */
#define IMAGE_MAX_FILE_BYTES (1LL << 31)

const char *image_mode_name(image_mode mode) {
    switch (mode) {
    case IMAGE_MODE_L: return "L";
    case IMAGE_MODE_LA: return "LA";
    case IMAGE_MODE_P: return "P";
    case IMAGE_MODE_RGB: return "RGB";
    case IMAGE_MODE_RGBA: return "RGBA";
    case IMAGE_MODE_CMYK: return "CMYK";
    case IMAGE_MODE_I16: return "I;16";
    case IMAGE_MODE_I32: return "I";
    case IMAGE_MODE_1: return "1";
    }
    return "?";
}

void image_free(decoded_image *image) {
    if (!image) return;
    free(image->pixels);
    image->pixels = NULL;
}

/* ------------------------------------------------------------------------- */
/* Shared helpers                                                             */
/* ------------------------------------------------------------------------- */

static void mode_layout(image_mode mode, int *channels, int *bytes_per_channel) {
    *bytes_per_channel = 1;
    switch (mode) {
    case IMAGE_MODE_LA: *channels = 2; break;
    case IMAGE_MODE_RGB: *channels = 3; break;
    case IMAGE_MODE_RGBA:
    case IMAGE_MODE_CMYK: *channels = 4; break;
    case IMAGE_MODE_I16: *channels = 1; *bytes_per_channel = 2; break;
    case IMAGE_MODE_I32: *channels = 1; *bytes_per_channel = 4; break;
    default: *channels = 1; break;
    }
}

/* Refuses sizes we will not decode; called before any pixel allocation. */
static vt_status check_image_size(const char *format, long long width, long long height,
                                  long long max_pixels, vt_error *err) {
    if (width < 1 || height < 1)
        return vt_fail(err, VT_ERR_FORMAT, "%s: invalid image size %lldx%lld", format, width,
                       height);
    if (width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE || width * height > max_pixels)
        return vt_fail(err, VT_ERR_UNSUPPORTED,
                       "%s: image is %lldx%lld pixels, larger than the limit of %d per side "
                       "and %lld in total (decompression bomb?)",
                       format, width, height, IMAGE_MAX_SIDE, max_pixels);
    return VT_OK;
}

/* Sets the header fields of `out` for `mode` and allocates its pixels. */
static vt_status allocate_image(decoded_image *out, int width, int height, image_mode mode,
                                vt_error *err) {
    memset(out, 0, sizeof *out);
    out->width = width;
    out->height = height;
    out->mode = mode;
    mode_layout(mode, &out->channels, &out->bytes_per_channel);
    size_t bytes = (size_t)width * height * out->channels * out->bytes_per_channel;
    out->pixels = malloc(bytes);
    if (!out->pixels)
        return vt_fail(err, VT_ERR_NOMEM, "out of memory for a %dx%d %s image (%zu bytes)",
                       width, height, image_mode_name(mode), bytes);
    return VT_OK;
}

static size_t row_bytes(const decoded_image *image) {
    return (size_t)image->width * image->channels * image->bytes_per_channel;
}

/* ------------------------------------------------------------------------- */
/* JPEG (libjpeg-turbo)                                                       */
/* ------------------------------------------------------------------------- */

typedef struct {
    struct jpeg_error_mgr manager; /* must be first: libjpeg hands us this pointer */
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX + 64];
} jpeg_error_context;

static void jpeg_error_exit_longjmp(j_common_ptr cinfo) {
    jpeg_error_context *context = (jpeg_error_context *)cinfo->err;
    context->manager.format_message(cinfo, context->message);
    longjmp(context->jump, 1);
}

/* Pillow's JpegDecode.c installs an output_message that prints nothing, so
 * warnings ("Corrupt JPEG data: ...") are ignored and decoding goes on. */
static void jpeg_silence_message(j_common_ptr cinfo) { (void)cinfo; }

static void jpeg_source_init(j_decompress_ptr cinfo) { (void)cinfo; }
static void jpeg_source_term(j_decompress_ptr cinfo) { (void)cinfo; }

/* Ends the decode with our own message (libjpeg has no error code for these). */
static void jpeg_fail_with_message(j_decompress_ptr cinfo, const char *message) {
    jpeg_error_context *context = (jpeg_error_context *)cinfo->err;
    snprintf(context->message, sizeof context->message, "%s", message);
    longjmp(context->jump, 1);
}

/* The whole file is in memory, so a request for more data means the file ended.
 * libjpeg's own memory source would insert a fake EOI and return a partly grey
 * image. Pillow's source suspends instead, and what happens next depends on
 * where: before the last scanline Pillow fails ("image file is truncated");
 * after it, in jpeg_finish_decompress, the suspension is accepted. `client_data`
 * says which case we are in. */
static boolean jpeg_source_fill_at_eof(j_decompress_ptr cinfo) {
    const int *after_last_scanline = cinfo->client_data;
    if (*after_last_scanline) return FALSE; /* suspend, as Pillow's source does */
    jpeg_fail_with_message(cinfo, "file is truncated (premature end of JPEG data)");
    return FALSE;
}

static void jpeg_source_skip(j_decompress_ptr cinfo, long count) {
    struct jpeg_source_mgr *source = cinfo->src;
    const int *after_last_scanline = cinfo->client_data;
    if (count <= 0) return;
    if ((size_t)count > source->bytes_in_buffer) {
        if (!*after_last_scanline)
            jpeg_fail_with_message(cinfo, "file is truncated (a marker runs past the end)");
        count = (long)source->bytes_in_buffer; /* the next read suspends */
    }
    source->next_input_byte += count;
    source->bytes_in_buffer -= (size_t)count;
}

static void jpeg_limit_scans(j_common_ptr cinfo) {
    j_decompress_ptr decompress = (j_decompress_ptr)cinfo;
    if (decompress->input_scan_number > JPEG_MAX_SCANS) {
        char message[128];
        snprintf(message, sizeof message,
                 "more than %d progressive scans (corrupt or malicious file)", JPEG_MAX_SCANS);
        jpeg_fail_with_message(decompress, message);
    }
}

/* JpegImagePlugin.SOF: the Pillow mode comes from the number of components;
 * libjpeg converts to the matching output colour space (YCbCr -> RGB,
 * YCCK -> CMYK), with libjpeg's defaults otherwise (ISLOW DCT, fancy upsampling),
 * which Pillow does not change either. */
static vt_status jpeg_choose_mode(j_decompress_ptr cinfo, image_mode *mode, vt_error *err) {
    switch (cinfo->num_components) {
    case 1: *mode = IMAGE_MODE_L; cinfo->out_color_space = JCS_GRAYSCALE; return VT_OK;
    case 3: *mode = IMAGE_MODE_RGB; cinfo->out_color_space = JCS_RGB; return VT_OK;
    case 4: *mode = IMAGE_MODE_CMYK; cinfo->out_color_space = JCS_CMYK; return VT_OK;
    default:
        return vt_fail(err, VT_ERR_UNSUPPORTED, "JPEG: cannot handle %d-component images",
                       cinfo->num_components);
    }
}

/* Pillow reads CMYK JPEGs with rawmode "CMYK;I" whether or not an Adobe APP14
 * marker is present ("assume adobe conventions"): every sample is inverted. */
static void invert_samples(uint8_t *samples, size_t count) {
    for (size_t i = 0; i < count; i++) samples[i] = (uint8_t)(255 - samples[i]);
}

/* Everything a JPEG decode touches between setjmp and a possible longjmp lives
 * here, on the heap, so no automatic variable can be clobbered by the jump. */
typedef struct {
    struct jpeg_decompress_struct cinfo;
    jpeg_error_context errors;
    struct jpeg_source_mgr source;
    struct jpeg_progress_mgr progress;
    decoded_image image;
    int after_last_scanline; /* see jpeg_source_fill_at_eof */
    vt_status status; /* set before a longjmp of our own; VT_OK for libjpeg errors */
} jpeg_decoder;

static void jpeg_fail(jpeg_decoder *d, vt_status status) {
    d->status = status;
    longjmp(d->errors.jump, 1);
}

static void jpeg_attach_memory_source(jpeg_decoder *d, const uint8_t *bytes, size_t size) {
    d->source.next_input_byte = bytes;
    d->source.bytes_in_buffer = size;
    d->source.init_source = jpeg_source_init;
    d->source.fill_input_buffer = jpeg_source_fill_at_eof;
    d->source.skip_input_data = jpeg_source_skip;
    d->source.resync_to_restart = jpeg_resync_to_restart;
    d->source.term_source = jpeg_source_term;
    d->cinfo.src = &d->source;
    d->cinfo.client_data = &d->after_last_scanline;
    d->progress.progress_monitor = jpeg_limit_scans;
    d->cinfo.progress = &d->progress;
}

/* The decode proper; any failure longjmps to decode_jpeg. Kept out of line so
 * its locals never share a frame with the setjmp. */
__attribute__((noinline)) static void jpeg_decode_steps(jpeg_decoder *d, long long max_pixels,
                                                        vt_error *err) {
    struct jpeg_decompress_struct *cinfo = &d->cinfo;
    jpeg_read_header(cinfo, TRUE);
    image_mode mode = IMAGE_MODE_L;
    vt_status st = jpeg_choose_mode(cinfo, &mode, err);
    if (st == VT_OK)
        st = check_image_size("JPEG", cinfo->image_width, cinfo->image_height, max_pixels, err);
    if (st == VT_OK)
        st = allocate_image(&d->image, (int)cinfo->image_width, (int)cinfo->image_height, mode,
                            err);
    if (st != VT_OK) jpeg_fail(d, st);

    jpeg_start_decompress(cinfo);
    if ((int)cinfo->output_components != d->image.channels ||
        (int)cinfo->output_width != d->image.width ||
        (int)cinfo->output_height != d->image.height)
        jpeg_fail(d, vt_fail(err, VT_ERR_FORMAT, "JPEG: decoder produced an unexpected layout"));
    size_t stride = row_bytes(&d->image);
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = d->image.pixels + cinfo->output_scanline * stride;
        jpeg_read_scanlines(cinfo, &row, 1);
    }
    /* JpegDecode.c then calls jpeg_finish_decompress, which reads on to the
     * EOI marker: an error there (e.g. an unknown marker) fails the image, the
     * end of the file does not (the source suspends and Pillow accepts that). */
    d->after_last_scanline = 1;
    jpeg_finish_decompress(cinfo);
    if (mode == IMAGE_MODE_CMYK) invert_samples(d->image.pixels, stride * d->image.height);
}

/* JpegImagePlugin._open walks the markers before the first scan itself and
 * refuses ("no marker found") any 0xFF01..0xFFBF marker, which libjpeg would
 * accept (e.g. TEM, 0xFF01). Markers 0xFFC0..0xFFFE either stand alone (JPG,
 * RSTn, SOI, EOI, JPGn) or carry a 16-bit length that is skipped; 0xFF00 and
 * 0xFFFF are padding; other bytes are junk Pillow skips. Truncation and odd
 * lengths are left to libjpeg. Returns the offending marker, or 0 if none. */
static int jpeg_marker_pillow_refuses(const uint8_t *bytes, size_t size) {
    size_t pos = 2; /* after SOI; Pillow has checked FF D8 FF */
    while (pos + 1 < size) {
        if (bytes[pos] != 0xFF) { /* junk */
            pos++;
            continue;
        }
        unsigned marker = bytes[pos + 1];
        if (marker == 0xFF) { /* padding: this FF starts the next marker */
            pos++;
            continue;
        }
        if (marker == 0x00) {
            pos += 2;
            continue;
        }
        if (marker < 0xC0) return 0xFF00 | marker;
        if (marker == 0xDA) return 0; /* start of scan: Pillow's header walk ends */
        int standalone = marker == 0xC8 || (marker >= 0xD0 && marker <= 0xD9) || (marker >= 0xF0 && marker <= 0xFD);
        if (standalone) {
            pos += 2;
            continue;
        }
        if (pos + 4 > size) return 0;
        size_t length = (size_t)bytes[pos + 2] << 8 | bytes[pos + 3];
        if (length < 2) return 0;
        pos += 2 + length;
    }
    return 0;
}

static vt_status decode_jpeg(const uint8_t *bytes, size_t size, long long max_pixels,
                             decoded_image *out, vt_error *err) {
    int refused = jpeg_marker_pillow_refuses(bytes, size);
    if (refused)
        return vt_fail(err, VT_ERR_FORMAT, "JPEG: marker 0x%04X before the image data is not valid here (Pillow "
                                           "refuses this file too)", refused);
    jpeg_decoder *d = calloc(1, sizeof *d);
    if (!d) return vt_fail(err, VT_ERR_NOMEM, "JPEG: out of memory for the decoder");
    d->cinfo.err = jpeg_std_error(&d->errors.manager);
    d->errors.manager.error_exit = jpeg_error_exit_longjmp;
    d->errors.manager.output_message = jpeg_silence_message;
    vt_status status = VT_OK;
    if (setjmp(d->errors.jump) == 0) {
        jpeg_create_decompress(&d->cinfo);
        jpeg_attach_memory_source(d, bytes, size);
        jpeg_decode_steps(d, max_pixels, err);
        *out = d->image;
    } else {
        image_free(&d->image);
        status = d->status != VT_OK ? d->status
                                    : vt_fail(err, VT_ERR_FORMAT, "JPEG: %s", d->errors.message);
    }
    jpeg_destroy_decompress(&d->cinfo);
    free(d);
    return status;
}

/* ------------------------------------------------------------------------- */
/* PNG (libpng)                                                               */
/* ------------------------------------------------------------------------- */

/* Pillow's PNG reader is its own (PngImagePlugin.py + ZipDecode.c), and its
 * notion of a good file differs from libpng's in ways that decide between an
 * image and an error:
 *   - it verifies the CRC of every chunk before the first IDAT, and of no chunk
 *     from IDAT on;
 *   - it stops reading as soon as the last row is decoded, so a missing zlib
 *     checksum, IDAT CRC or IEND (a file cut in its last bytes) is fine, while
 *     a file cut anywhere before the last row is "truncated".
 *   - every chunk before the image data and after it (up to IEND) goes
 *     through a Python handler that can reject it (a short gAMA, a zTXt that
 *     inflates past 1 MiB, ...), although no pixel depends on it.
 * We reproduce all three: our own walk over the chunks with Pillow's checks
 * (CRCs before IDAT, handler rules before and after), libpng told to ignore
 * CRCs and those chunks, and libpng's progressive reader fed one chunk at a
 * time, which hands us each row as soon as it is decoded, so we know whether
 * every row arrived and in which chunk the image ended. */

typedef struct {
    png_structp png;
    png_infop info;
    long long max_pixels;
    vt_error *err;
    decoded_image image;
    int bit_depth, color_type, interlaced;
    unsigned long rows_expected, rows_received;
    size_t image_data_end; /* file offset just after the chunk that completed the image */
    vt_status status;  /* set before a longjmp of our own */
    int failed;        /* libpng (or we) jumped out */
    char message[256]; /* libpng's error text */
} png_decoder;

/* ------------------------------------------------------------------------- */
/* What Pillow checks in the chunks around the image data                     */
/* ------------------------------------------------------------------------- */

/* PngImagePlugin reads the chunks before the first IDAT (PngImageFile._open)
 * and, once the image is decoded, the chunks after it up to IEND (load_end),
 * through the same per-chunk handlers. A handler that raises fails the whole
 * Image.open / load, even for metadata nothing here uses, so we apply the same
 * rules; libpng is told to ignore all of these chunks (png_configure). */

/* Pillow's MAX_TEXT_CHUNK (ImageFile.SAFEBLOCK) */
#define PILLOW_MAX_TEXT_CHUNK (1024 * 1024)

typedef struct {
    const uint8_t *type, *data;
    uint32_t length;
} png_chunk;

static uint32_t read_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int png_chunk_is(const png_chunk *chunk, const char *type) {
    return memcmp(chunk->type, type, 4) == 0;
}

/* PngImagePlugin.is_cid: four "word" characters. */
static int png_is_chunk_name(const uint8_t *type) {
    for (int i = 0; i < 4; i++) {
        uint8_t c = type[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return 0;
    }
    return 1;
}

/* A chunk name for messages: bytes that do not print become '?'. */
static void png_chunk_label(const uint8_t *type, char label[5]) {
    for (int i = 0; i < 4; i++) label[i] = isprint(type[i]) ? (char)type[i] : '?';
    label[4] = '\0';
}

/* _safe_zlib_decompress: zlib errors are ignored by the callers, but a text or
 * profile that inflates past MAX_TEXT_CHUNK with input left over raises. */
static int png_inflates_past_text_limit(const uint8_t *data, size_t length) {
    z_stream stream;
    memset(&stream, 0, sizeof stream);
    if (inflateInit(&stream) != Z_OK) return 0;
    uint8_t sink[16384];
    size_t produced = 0;
    stream.next_in = (Bytef *)data;
    stream.avail_in = (uInt)length;
    int result = Z_OK;
    while (result == Z_OK && produced < PILLOW_MAX_TEXT_CHUNK) {
        size_t room = PILLOW_MAX_TEXT_CHUNK - produced;
        stream.next_out = sink;
        stream.avail_out = (uInt)(room < sizeof sink ? room : sizeof sink);
        uInt before = stream.avail_out;
        result = inflate(&stream, Z_NO_FLUSH);
        produced += before - stream.avail_out;
        if (result == Z_BUF_ERROR && before == stream.avail_out) break; /* no progress */
    }
    int too_large = produced >= PILLOW_MAX_TEXT_CHUNK && stream.avail_in > 0 &&
                    result != Z_STREAM_END;
    inflateEnd(&stream);
    return too_large;
}

/* chunk_iCCP / chunk_zTXt: keyword, NUL, compression method (must be 0), zlib
 * data. chunk_iCCP reads the method byte without a bounds check (IndexError;
 * with no NUL it reads byte 0); chunk_zTXt without a NUL has no text at all. */
static const char *png_compressed_text_problem(const png_chunk *c) {
    const int is_iccp = png_chunk_is(c, "iCCP");
    const uint8_t *nul = c->length ? memchr(c->data, 0, c->length) : NULL;
    if (!nul && !is_iccp) return NULL;
    size_t method_at = nul ? (size_t)(nul - c->data) + 1 : 0;
    if (method_at >= c->length) return is_iccp ? "too short" : NULL;
    if (c->data[method_at] != 0)
        return "unknown compression method";
    if (png_inflates_past_text_limit(c->data + method_at + 1, c->length - method_at - 1))
        return "text inflates past Pillow's 1 MiB MAX_TEXT_CHUNK";
    return NULL;
}

/* chunk_iTXt: keyword NUL, flag, method, language NUL, translated keyword NUL,
 * text; only a compressed (flag != 0, method 0) text that inflates past the
 * limit raises, anything malformed is skipped quietly. */
static const char *png_international_text_problem(const png_chunk *c) {
    const uint8_t *p = c->data, *end = c->data + c->length;
    const uint8_t *nul = c->length ? memchr(p, 0, c->length) : NULL;
    if (!nul || end - (nul + 1) < 2) return NULL;
    int compressed = nul[1] != 0, method = nul[2];
    p = nul + 3;
    for (int field = 0; field < 2; field++) { /* language, translated keyword */
        nul = p < end ? memchr(p, 0, (size_t)(end - p)) : NULL;
        if (!nul) return NULL;
        p = nul + 1;
    }
    if (compressed && method == 0 && png_inflates_past_text_limit(p, (size_t)(end - p)))
        return "text inflates past Pillow's 1 MiB MAX_TEXT_CHUNK";
    return NULL;
}

/* The shortest chunk each fixed-layout handler of PngImagePlugin accepts
 * (chunk_IHDR, chunk_gAMA, ... raise "Truncated ... chunk" below that). */
static const struct {
    char type[5];
    uint32_t min_length;
} pillow_min_chunk_lengths[] = {
    {"IHDR", 13}, {"gAMA", 4}, {"cHRM", 32}, {"sRGB", 1}, {"pHYs", 9}, {"acTL", 8},
};

/* The checks of Pillow's chunk handlers that can fail; `color_type` is the
 * IHDR's. APNG's frame-sequence checks are not reproduced. */
static vt_status png_check_chunk_contents(const png_chunk *c, int color_type, vt_error *err) {
    const char *problem = NULL;
    for (size_t i = 0; i < COUNT_OF(pillow_min_chunk_lengths); i++) {
        if (png_chunk_is(c, pillow_min_chunk_lengths[i].type) &&
            c->length < pillow_min_chunk_lengths[i].min_length)
            problem = "too short";
    }
    if (!problem && png_chunk_is(c, "IHDR") && c->data[11] != 0)
        problem = "unknown filter method"; /* "unknown filter category" */
    /* chunk_tRNS wants a whole colour for modes 1 / L / I;16 / RGB */
    if (!problem && png_chunk_is(c, "tRNS") &&
        ((color_type == PNG_COLOR_TYPE_GRAY && c->length < 2) ||
         (color_type == PNG_COLOR_TYPE_RGB && c->length < 6)))
        problem = "too short";
    if (!problem && (png_chunk_is(c, "iCCP") || png_chunk_is(c, "zTXt")))
        problem = png_compressed_text_problem(c);
    if (!problem && png_chunk_is(c, "iTXt")) problem = png_international_text_problem(c);
    if (!problem) return VT_OK;
    char label[5];
    png_chunk_label(c->type, label);
    return vt_fail(err, VT_ERR_FORMAT, "PNG: malformed %s chunk: %s (Pillow refuses it too)",
                   label, problem);
}

/* PngImageFile._open: every chunk before the first IDAT goes through its
 * handler and then PngStream.crc, which fails on a checksum mismatch. (From
 * IDAT on Pillow checks no CRC, so libpng is told to ignore them all.) A file
 * that ends early is left to libpng, which reports it as truncated. */
static vt_status png_check_chunks_before_image(const uint8_t *bytes, size_t size,
                                               vt_error *err) {
    size_t at = 8;
    int color_type = -1;
    while (size - at >= 12) {
        png_chunk c = {bytes + at + 4, bytes + at + 8, read_be32(bytes + at)};
        if (png_chunk_is(&c, "IDAT") || c.length > size - at - 12) return VT_OK;
        if (png_chunk_is(&c, "IHDR") && c.length >= 13) color_type = c.data[9];
        vt_status st = png_check_chunk_contents(&c, color_type, err);
        if (st != VT_OK) return st;
        uint32_t stored = read_be32(c.data + c.length);
        uint32_t computed = (uint32_t)crc32(crc32(0, c.type, 4), c.data, c.length);
        if (stored != computed) {
            char label[5];
            png_chunk_label(c.type, label);
            return vt_fail(err, VT_ERR_FORMAT, "PNG: broken file (bad checksum in %s chunk)",
                           label);
        }
        at += 12 + (size_t)c.length;
    }
    return VT_OK;
}

/* PngImageFile.load_end: after the image, Pillow reads the chunks up to IEND,
 * skipping their CRCs. It stops quietly at the end of the file or at a
 * malformed chunk header, but a chunk whose data runs past the end of the file
 * is an error ("Truncated File Read"), and so is a handler's complaint. */
static vt_status png_check_chunks_after_image(const uint8_t *bytes, size_t size, size_t at,
                                              int color_type, vt_error *err) {
    while (size - at >= 8) {
        png_chunk c = {bytes + at + 4, bytes + at + 8, read_be32(bytes + at)};
        if (!png_is_chunk_name(c.type) || png_chunk_is(&c, "IEND")) return VT_OK;
        char label[5];
        png_chunk_label(c.type, label);
        if (c.length > size - at - 8)
            return vt_fail(err, VT_ERR_FORMAT,
                           "PNG: file is truncated (the %s chunk after the image data is cut "
                           "short)",
                           label);
        vt_status st = png_check_chunk_contents(&c, color_type, err);
        if (st != VT_OK) return st;
        at += 8 + (size_t)c.length;
        at += size - at < 4 ? size - at : 4; /* its CRC, unchecked */
    }
    return VT_OK;
}

static void png_error_longjmp(png_structp png, png_const_charp message) {
    png_decoder *d = png_get_error_ptr(png);
    snprintf(d->message, sizeof d->message, "%s", message);
    png_longjmp(png, 1);
}

static void png_silence_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

static void png_fail(png_decoder *d, vt_status status) {
    d->status = status;
    png_longjmp(d->png, 1);
}

/* The ancillary chunks libpng would parse but Pillow's pixels never depend on
 * (Pillow ignores gAMA, cHRM, iCCP, sBIT, ... when decoding). Treating them as
 * unknown and discarding them keeps libpng from validating or decompressing
 * them. PLTE and tRNS stay known. */
static const png_byte png_ignored_chunks[] = "bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0"
                                             "pCAL\0pHYs\0sBIT\0sCAL\0sPLT\0sRGB\0tEXt\0tIME\0"
                                             "zTXt\0";

static void png_configure(png_structp png) {
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, png_ignored_chunks,
                                (int)(sizeof png_ignored_chunks / 5));
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, 0); /* and all unknown */
    /* CRCs: see png_check_chunks_before_image */
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
    /* We enforce our own size limits (check_image_size) with a clearer message. */
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
}

/* PngImagePlugin._MODES: (bit depth, colour type) -> Pillow mode. */
static vt_status png_choose_mode(int bit_depth, int color_type, image_mode *mode,
                                 vt_error *err) {
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY:
        *mode = bit_depth == 1 ? IMAGE_MODE_1 : bit_depth == 16 ? IMAGE_MODE_I16 : IMAGE_MODE_L;
        return VT_OK;
    case PNG_COLOR_TYPE_RGB: *mode = IMAGE_MODE_RGB; return VT_OK;
    case PNG_COLOR_TYPE_PALETTE: *mode = IMAGE_MODE_P; return VT_OK;
    /* (16, 4) maps to RGBA with rawmode "LA;16B": "LA;16B->LA not yet available" */
    case PNG_COLOR_TYPE_GRAY_ALPHA:
        *mode = bit_depth == 16 ? IMAGE_MODE_RGBA : IMAGE_MODE_LA;
        return VT_OK;
    case PNG_COLOR_TYPE_RGB_ALPHA: *mode = IMAGE_MODE_RGBA; return VT_OK;
    }
    return vt_fail(err, VT_ERR_FORMAT, "PNG: invalid colour type %d", color_type);
}

/* PLTE -> the palette Pillow's P -> RGB conversion looks up. An index past
 * the end of PLTE converts to black in Pillow 13 (checked: older Pillows gave
 * the palette's initial grey ramp instead), so unused entries are (0, 0, 0).
 * tRNS alpha goes to the 4th byte, although convert("RGB") never reads it. */
static void png_read_palette(png_structp png, png_infop info, decoded_image *image) {
    for (int i = 0; i < 256; i++) {
        image->palette[4 * i] = image->palette[4 * i + 1] = image->palette[4 * i + 2] = 0;
        image->palette[4 * i + 3] = 255;
    }
    png_colorp colors = NULL;
    int count = 0;
    if (png_get_PLTE(png, info, &colors, &count) & PNG_INFO_PLTE) {
        for (int i = 0; i < count && i < 256; i++) {
            image->palette[4 * i] = colors[i].red;
            image->palette[4 * i + 1] = colors[i].green;
            image->palette[4 * i + 2] = colors[i].blue;
        }
        image->palette_size = count;
    }
    png_bytep alphas = NULL;
    int alpha_count = 0;
    if (png_get_tRNS(png, info, &alphas, &alpha_count, NULL) & PNG_INFO_tRNS) {
        for (int i = 0; alphas && i < alpha_count && i < 256; i++)
            image->palette[4 * i + 3] = alphas[i];
    }
}

/* Sample `index` of a packed PNG row (MSB-first for depths below 8,
 * big-endian for 16). */
static unsigned png_raw_sample(const uint8_t *row, size_t index, int bit_depth) {
    if (bit_depth == 8) return row[index];
    if (bit_depth == 16) return (unsigned)row[2 * index] << 8 | row[2 * index + 1];
    size_t per_byte = (size_t)(8 / bit_depth);
    int shift = 8 - bit_depth * (int)(index % per_byte + 1);
    return (row[index / per_byte] >> shift) & ((1u << bit_depth) - 1);
}

/* Pixel `x` of a raw PNG row in Pillow's layout, following the rawmode of
 * PngImagePlugin._MODES and Pillow's unpackers (Unpack.c):
 *   "1"           bits -> 0 / 255          "L;2" "L;4"   x 0x55, x 0x11
 *   "P;1/2/4", "P" the index, unscaled       "I;16B"       16-bit, host order
 *   "RGB;16B", "RGBA;16B" the high byte of each sample (no rounding)
 *   "LA;16B"       high bytes as R = G = B = L, then A */
static void png_pixel_to_pillow(const png_decoder *d, const uint8_t *row, size_t x,
                                uint8_t *out) {
    const int depth = d->bit_depth;
    switch (d->color_type) {
    case PNG_COLOR_TYPE_GRAY: {
        unsigned v = png_raw_sample(row, x, depth);
        if (depth == 16) {
            uint16_t gray = (uint16_t)v;
            memcpy(out, &gray, sizeof gray);
        } else {
            out[0] = (uint8_t)(v * 255u / ((1u << depth) - 1));
        }
        return;
    }
    case PNG_COLOR_TYPE_PALETTE: out[0] = (uint8_t)png_raw_sample(row, x, depth); return;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
        if (depth == 16) {
            out[0] = out[1] = out[2] = (uint8_t)(png_raw_sample(row, 2 * x, 16) >> 8);
            out[3] = (uint8_t)(png_raw_sample(row, 2 * x + 1, 16) >> 8);
            return;
        }
        out[0] = row[2 * x];
        out[1] = row[2 * x + 1];
        return;
    default: { /* RGB, RGBA */
        int channels = d->color_type == PNG_COLOR_TYPE_RGB ? 3 : 4;
        for (int c = 0; c < channels; c++) {
            unsigned v = png_raw_sample(row, (size_t)channels * x + c, depth);
            out[c] = (uint8_t)(depth == 16 ? v >> 8 : v);
        }
        return;
    }
    }
}

/* Rows libpng will deliver: every row of every non-empty Adam7 pass (libpng
 * skips passes with no rows or no columns), or just the image rows. */
static unsigned long png_rows_expected(png_uint_32 width, png_uint_32 height, int interlaced) {
    if (!interlaced) return height;
    unsigned long rows = 0;
    for (int pass = 0; pass < 7; pass++) {
        if (PNG_PASS_COLS(width, pass) > 0) rows += PNG_PASS_ROWS(height, pass);
    }
    return rows;
}

/* Progressive reader callback: the header is in, before any image data. */
static void png_on_header(png_structp png, png_infop info) {
    png_decoder *d = png_get_progressive_ptr(png);
    /* libpng can call back a second time on a malformed stream (IDAT, junk,
     * IDAT again); the image is already set up, so that is an error. */
    if (d->image.pixels) png_error(png, "image data restarted after other chunks");
    png_uint_32 width = 0, height = 0;
    int interlace = 0;
    png_get_IHDR(png, info, &width, &height, &d->bit_depth, &d->color_type, &interlace, NULL,
                 NULL);
    d->interlaced = interlace != PNG_INTERLACE_NONE;
    image_mode mode = IMAGE_MODE_L;
    vt_status st = png_choose_mode(d->bit_depth, d->color_type, &mode, d->err);
    if (st == VT_OK) st = check_image_size("PNG", width, height, d->max_pixels, d->err);
    if (st == VT_OK) st = allocate_image(&d->image, (int)width, (int)height, mode, d->err);
    if (st != VT_OK) png_fail(d, st);
    if (mode == IMAGE_MODE_P) png_read_palette(png, info, &d->image);
    d->rows_expected = png_rows_expected(width, height, d->interlaced);
    /* No libpng transformation at all (no gamma, no tRNS expansion, no 16-bit
     * stripping, not even deinterlacing): rows arrive exactly as stored, pass by
     * pass for Adam7 images, and the conversion to Pillow's layout is ours. */
    png_read_update_info(png, info);
}

/* Progressive reader callback: row `row` of Adam7 pass `pass` (of the image,
 * when not interlaced) is decoded; scatter its pixels into the image. */
static void png_on_row(png_structp png, png_bytep raw, png_uint_32 row, int pass) {
    png_decoder *d = png_get_progressive_ptr(png);
    if (!raw || !d->image.pixels) return;
    decoded_image *image = &d->image;
    size_t pixel = (size_t)image->channels * image->bytes_per_channel;
    png_uint_32 y = d->interlaced ? PNG_ROW_FROM_PASS_ROW(row, pass) : row;
    png_uint_32 columns = d->interlaced ? PNG_PASS_COLS(image->width, pass) : image->width;
    if (y >= (png_uint_32)image->height) return;
    uint8_t *out_row = image->pixels + (size_t)y * image->width * pixel;
    for (png_uint_32 i = 0; i < columns; i++) {
        png_uint_32 x = d->interlaced ? PNG_COL_FROM_PASS_COL(i, pass) : i;
        if (x < (png_uint_32)image->width) png_pixel_to_pillow(d, raw, i, out_row + x * pixel);
    }
    d->rows_received++;
}

/* Where the chunk starting at `at` ends (after its CRC), or the end of the
 * file for a chunk cut short. */
static size_t png_chunk_end(const uint8_t *bytes, size_t size, size_t at) {
    if (size - at < 12) return size;
    uint32_t length = read_be32(bytes + at);
    if (length > size - at - 12) return size;
    return at + 12 + length;
}

static int png_is_oversized_idat(const uint8_t *bytes, size_t size, size_t at) {
    return size - at >= 8 && memcmp(bytes + at + 4, "IDAT", 4) == 0 &&
           read_be32(bytes + at) > size - at - 8;
}

/* An IDAT chunk that claims more bytes than the file holds: Pillow just hands
 * its decoder whatever bytes there are (and succeeds if they complete the
 * image), while libpng refuses a length of 2^31 or more outright. So libpng
 * gets a header with the length the file can actually hold. */
static void png_feed_oversized_idat(png_decoder *d, const uint8_t *bytes, size_t size,
                                    size_t at) {
    size_t available = size - at - 8;
    uint32_t length = available > 0x7fffffffu ? 0x7fffffffu : (uint32_t)available;
    png_byte header[8] = {(png_byte)(length >> 24), (png_byte)(length >> 16),
                          (png_byte)(length >> 8), (png_byte)length, 'I', 'D', 'A', 'T'};
    png_process_data(d->png, d->info, header, sizeof header);
    if (length) png_process_data(d->png, d->info, (png_bytep)bytes + at + 8, length);
}

/* Feeds the file to libpng one chunk at a time, and stops after the chunk in
 * which the last row was completed, as Pillow's decoder does. Any failure
 * longjmps to decode_png. Kept out of line so its locals never share a frame
 * with the setjmp. */
__attribute__((noinline)) static void png_decode_steps(png_decoder *d, const uint8_t *bytes,
                                                       size_t size) {
    png_configure(d->png);
    png_set_progressive_read_fn(d->png, d, png_on_header, png_on_row, NULL);
    size_t at = size < 8 ? size : 8; /* the signature */
    png_process_data(d->png, d->info, (png_bytep)bytes, at);
    while (at < size && !(d->image.pixels && d->rows_received == d->rows_expected)) {
        size_t end = png_chunk_end(bytes, size, at);
        if (end == size && png_is_oversized_idat(bytes, size, at))
            png_feed_oversized_idat(d, bytes, size, at);
        else
            png_process_data(d->png, d->info, (png_bytep)bytes + at, end - at);
        at = end;
    }
    d->image_data_end = at;
}

static vt_status decode_png(const uint8_t *bytes, size_t size, long long max_pixels,
                            decoded_image *out, vt_error *err) {
    vt_status status = png_check_chunks_before_image(bytes, size, err);
    if (status != VT_OK) return status;
    png_decoder *d = calloc(1, sizeof *d);
    if (!d) return vt_fail(err, VT_ERR_NOMEM, "PNG: out of memory for the decoder");
    d->max_pixels = max_pixels;
    d->err = err;
    d->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, d, png_error_longjmp,
                                    png_silence_warning);
    if (d->png) d->info = png_create_info_struct(d->png);
    if (d->png && d->info) {
        if (setjmp(png_jmpbuf(d->png)) == 0)
            png_decode_steps(d, bytes, size);
        else
            d->failed = 1;
    }

    if (d->image.pixels && d->rows_received == d->rows_expected) {
        /* Every row arrived, so libpng saw nothing after the image data;
         * only the chunks that follow remain to be checked as Pillow does. */
        status = png_check_chunks_after_image(bytes, size, d->image_data_end, d->color_type,
                                              err);
        if (status == VT_OK) *out = d->image;
    } else if (!d->png || !d->info) {
        status = vt_fail(err, VT_ERR_NOMEM, "PNG: cannot create the decoder");
    } else if (d->status != VT_OK) {
        status = d->status;
    } else if (d->failed) {
        status = vt_fail(err, VT_ERR_FORMAT, "PNG: %s", d->message);
    } else if (!d->image.pixels) {
        status = vt_fail(err, VT_ERR_FORMAT, "PNG: file is truncated (no image header)");
    } else {
        status = vt_fail(err, VT_ERR_FORMAT, "PNG: file is truncated (%lu of %lu rows)",
                         d->rows_received, d->rows_expected);
    }
    if (status != VT_OK) image_free(&d->image);
    png_destroy_read_struct(&d->png, d->info ? &d->info : NULL, NULL);
    free(d);
    return status;
}

/* ------------------------------------------------------------------------- */
/* WebP (libwebp)                                                             */
/* ------------------------------------------------------------------------- */

static const char *webp_status_text(VP8StatusCode code) {
    switch (code) {
    case VP8_STATUS_OK: return "ok";
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error (corrupt file)";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "not enough data (truncated file)";
    }
    return "unknown error";
}

/* WebPImagePlugin: Pillow decodes through WebPAnimDecoder into an RGBA canvas
 * (not premultiplied) and reports mode "RGBA" when the bitstream has alpha,
 * otherwise "RGB" (rawmode "RGBX"). The first frame of a still image is decoded
 * straight into the canvas with libwebp's default options (fancy upsampling, no
 * dithering), which is what WebPDecode does here. */
static vt_status decode_webp(const uint8_t *bytes, size_t size, long long max_pixels,
                             decoded_image *out, vt_error *err) {
    /* WebPDemux (demux.c: ReadHeader) reads nothing past the RIFF chunk's
     * declared end, while WebPDecode would use a bitstream running beyond it. */
    uint32_t riff_size = (uint32_t)bytes[4] | (uint32_t)bytes[5] << 8 |
                         (uint32_t)bytes[6] << 16 | (uint32_t)bytes[7] << 24;
    if (riff_size < 8 || riff_size > UINT32_MAX - 8 - 1)
        return vt_fail(err, VT_ERR_FORMAT, "WebP: invalid RIFF size %u", (unsigned)riff_size);
    if (size > (size_t)riff_size + 8) size = (size_t)riff_size + 8;
    WebPDecoderConfig config;
    if (!WebPInitDecoderConfig(&config))
        return vt_fail(err, VT_ERR_UNSUPPORTED, "WebP: libwebp version mismatch");
    VP8StatusCode code = WebPGetFeatures(bytes, size, &config.input);
    if (code != VP8_STATUS_OK)
        return vt_fail(err, VT_ERR_FORMAT, "WebP: %s", webp_status_text(code));
    if (config.input.has_animation)
        return vt_fail(err, VT_ERR_UNSUPPORTED,
                       "WebP: animated images are not supported (Pillow would use frame 1); "
                       "extract a frame first");
    vt_status st = check_image_size("WebP", config.input.width, config.input.height,
                                    max_pixels, err);
    if (st != VT_OK) return st;
    image_mode mode = config.input.has_alpha ? IMAGE_MODE_RGBA : IMAGE_MODE_RGB;
    decoded_image image;
    st = allocate_image(&image, config.input.width, config.input.height, mode, err);
    if (st != VT_OK) return st;

    config.output.colorspace = mode == IMAGE_MODE_RGBA ? MODE_RGBA : MODE_RGB;
    config.output.is_external_memory = 1;
    config.output.u.RGBA.rgba = image.pixels;
    config.output.u.RGBA.stride = (int)row_bytes(&image);
    config.output.u.RGBA.size = row_bytes(&image) * image.height;
    code = WebPDecode(bytes, size, &config);
    WebPFreeDecBuffer(&config.output);
    if (code != VP8_STATUS_OK) {
        image_free(&image);
        return vt_fail(err, VT_ERR_FORMAT, "WebP: %s", webp_status_text(code));
    }
    *out = image;
    return VT_OK;
}

/* ------------------------------------------------------------------------- */
/* Format detection and entry points                                          */
/* ------------------------------------------------------------------------- */

typedef enum { FORMAT_UNKNOWN, FORMAT_JPEG, FORMAT_PNG, FORMAT_WEBP } image_format;

/* By magic bytes only, with the same tests as Pillow's _accept functions. */
static image_format detect_format(const uint8_t *b, size_t n) {
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return FORMAT_JPEG;
    if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return FORMAT_PNG;
    /* WebPImagePlugin._accept: RIFF....WEBP followed by a VP8 / VP8L / VP8X chunk */
    if (n >= 16 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0 &&
        (memcmp(b + 12, "VP8 ", 4) == 0 || memcmp(b + 12, "VP8L", 4) == 0 ||
         memcmp(b + 12, "VP8X", 4) == 0))
        return FORMAT_WEBP;
    return FORMAT_UNKNOWN;
}

/* For the error message: name formats Pillow would open but we do not. */
static const char *other_format_hint(const uint8_t *b, size_t n) {
    if (n >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0))
        return " (it is a GIF; convert it to PNG)";
    if (n >= 2 && b[0] == 'B' && b[1] == 'M') return " (it looks like a BMP; convert it to PNG)";
    if (n >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0))
        return " (it looks like a TIFF; convert it to PNG)";
    return "";
}

vt_status image_decode_memory_limited(const uint8_t *bytes, size_t size, long long max_pixels,
                                      decoded_image *out, vt_error *err) {
    if (!out) return vt_fail(err, VT_ERR_ARGUMENT, "image_decode_memory: NULL output");
    memset(out, 0, sizeof *out);
    if (!bytes && size) return vt_fail(err, VT_ERR_ARGUMENT, "image_decode_memory: NULL data");
    if (max_pixels <= 0 || max_pixels > IMAGE_MAX_PIXELS) max_pixels = IMAGE_MAX_PIXELS;
    if (size == 0) return vt_fail(err, VT_ERR_FORMAT, "empty file (0 bytes), not an image");
    switch (detect_format(bytes, size)) {
    case FORMAT_JPEG: return decode_jpeg(bytes, size, max_pixels, out, err);
    case FORMAT_PNG: return decode_png(bytes, size, max_pixels, out, err);
    case FORMAT_WEBP: return decode_webp(bytes, size, max_pixels, out, err);
    case FORMAT_UNKNOWN: break;
    }
    return vt_fail(err, VT_ERR_UNSUPPORTED, "not a JPEG, PNG or WebP image%s",
                   other_format_hint(bytes, size));
}

vt_status image_decode_memory(const uint8_t *bytes, size_t size, decoded_image *out,
                              vt_error *err) {
    return image_decode_memory_limited(bytes, size, IMAGE_MAX_PIXELS, out, err);
}

/* Reads a whole regular file; the caller frees *data. */
static vt_status read_file(const char *path, uint8_t **data, size_t *size, vt_error *err) {
    *data = NULL;
    *size = 0;
    FILE *file = fopen(path, "rb");
    if (!file) return vt_fail(err, VT_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat info;
    if (fstat(fileno(file), &info) != 0 || !S_ISREG(info.st_mode)) {
        fclose(file);
        return vt_fail(err, VT_ERR_IO, "not a regular file");
    }
    if ((long long)info.st_size > IMAGE_MAX_FILE_BYTES) {
        fclose(file);
        return vt_fail(err, VT_ERR_UNSUPPORTED, "file is %lld bytes, larger than the %lld we read",
                       (long long)info.st_size, IMAGE_MAX_FILE_BYTES);
    }
    size_t length = (size_t)info.st_size;
    uint8_t *buffer = malloc(length ? length : 1);
    if (!buffer) {
        fclose(file);
        return vt_fail(err, VT_ERR_NOMEM, "out of memory reading %zu bytes", length);
    }
    size_t got = fread(buffer, 1, length, file);
    int failed = ferror(file);
    fclose(file);
    if (failed || got != length) {
        free(buffer);
        return vt_fail(err, VT_ERR_IO, "read error (got %zu of %zu bytes)", got, length);
    }
    *data = buffer;
    *size = length;
    return VT_OK;
}

vt_status image_decode_file(const char *path, decoded_image *out, vt_error *err) {
    if (!path || !out) return vt_fail(err, VT_ERR_ARGUMENT, "image_decode_file: NULL argument");
    memset(out, 0, sizeof *out);
    uint8_t *data;
    size_t size;
    vt_status st = read_file(path, &data, &size, err);
    if (st == VT_OK) {
        st = image_decode_memory(data, size, out, err);
        free(data);
    }
    if (st != VT_OK) vt_error_prefix(err, "%s: ", path);
    return st;
}
