/* SHA-256 (src/core/sha256.c) against the FIPS 180-4 / NIST example vectors,
 * fed whole and in odd-sized pieces (the streaming path). */
#include <string.h>

#include "core/sha256.h"
#include "unit.h"

static void check_hash(const char *data, size_t size, size_t piece, const char *expected) {
    vt_sha256 h;
    vt_sha256_init(&h);
    for (size_t at = 0; at < size; at += piece) vt_sha256_update(&h, data + at, size - at < piece ? size - at : piece);
    char hex[65];
    vt_sha256_final_hex(&h, hex);
    if (strcmp(hex, expected)) fprintf(stderr, "  got %s\n  want %s (piece %zu)\n", hex, expected, piece);
    CHECK(!strcmp(hex, expected));
}

int main(void) {
    static const size_t PIECES[] = {1, 3, 55, 56, 63, 64, 65, 1000000};
    static char million[1000000];
    memset(million, 'a', sizeof million);
    const char *two_block = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    for (size_t i = 0; i < sizeof PIECES / sizeof *PIECES; i++) {
        size_t p = PIECES[i];
        check_hash("", 0, p, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        check_hash("abc", 3, p, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        check_hash(two_block, strlen(two_block), p, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        check_hash(million, sizeof million, p, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }
    /* 55/56/64-byte messages straddle the padding boundary. */
    check_hash(million, 55, 7, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    check_hash(million, 56, 7, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    check_hash(million, 64, 7, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
    return unit_summary("sha256");
}
