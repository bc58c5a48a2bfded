/*
 * The C ABI from C: compiled against include/custody.h and the built
 * library by tests/abi.rs (the_c_program_agrees_with_the_rust_api), which
 * runs it on a keystore it made, types in the TOTP codes it asks for, and
 * passes the values the Rust API gives for the same inputs:
 *
 *   smoke KEYSTORE_DIR PASSPHRASE TX_JSON ALICE_ADDRESS ALICE_RAW_TX
 *         BOB_MESSAGE_SIGNATURE DAVE_PRIVATE_KEY_HEX
 *
 * For each wallet it enrols it prints "uri WALLET URI" and reads that
 * wallet's current code from stdin. Every check that fails prints
 * "FAIL ..." and the program exits 1; at the end it prints "ok: N checks".
 * Run under valgrind (CI) it must also be free of memory errors and leaks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "custody.h"

static int checks = 0;
static int failures = 0;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        checks++;                                                            \
        if (!(cond)) {                                                       \
            failures++;                                                      \
            printf("FAIL line %d: ", __LINE__);                              \
            printf(__VA_ARGS__);                                             \
            printf("\n");                                                    \
            fflush(stdout);                                                  \
        }                                                                    \
    } while (0)

/* Checks a failed call: its status, the struct's status and kind. */
#define CHECK_ERR(status, err, want_status, want_kind)                       \
    do {                                                                     \
        CHECK((status) == (want_status) && (err).status == (want_status) &&  \
                  strcmp((err).kind, (want_kind)) == 0,                      \
              "want %d %s, got %d %s: %s", (want_status), (want_kind),       \
              (status), (err).kind, (err).message);                          \
    } while (0)

#define CHECK_OK(status, err)                                                \
    CHECK((status) == CUSTODY_OK && (err).status == CUSTODY_OK &&            \
              (err).kind[0] == '\0',                                         \
          "want ok, got %d %s: %s", (status), (err).kind, (err).message)

/* Copies the string value of "key" from a flat JSON object (the library's
 * results hold no escaped quotes) into out; returns 0 if absent. */
static int json_field(const char *json, const char *key, char *out, size_t cap) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    const char *start = strstr(json, pattern);
    if (start == NULL) {
        return 0;
    }
    start += strlen(pattern);
    const char *end = strchr(start, '"');
    if (end == NULL || (size_t)(end - start) >= cap) {
        return 0;
    }
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
    return 1;
}

/* Enrols a wallet, prints its URI for the driver, reads back its code. */
static void enrol(CustodyKeystore *ks, const char *wallet, char *code, size_t cap) {
    CustodyError err;
    char *uri = NULL;
    int32_t status = custody_totp_enrol(ks, wallet, "custody-ffi-test", NULL, &uri, &err);
    CHECK_OK(status, err);
    CHECK(uri != NULL && strncmp(uri, "otpauth://totp/", 15) == 0, "uri %s", uri ? uri : "(null)");
    printf("uri %s %s\n", wallet, uri ? uri : "");
    fflush(stdout);
    status = custody_string_free(uri, &err);
    CHECK_OK(status, err);
    code[0] = '\0';
    if (fgets(code, (int)cap, stdin) == NULL) {
        code[0] = '\0';
    }
    code[strcspn(code, "\r\n")] = '\0';
    CHECK(strlen(code) == 6, "a 6-digit code for %s, got '%s'", wallet, code);
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: smoke DIR PASSPHRASE TX ADDRESS RAW MESSAGE_SIG KEY_HEX\n");
        return 2;
    }
    const char *dir = argv[1];
    const char *passphrase = argv[2];
    const char *tx = argv[3];
    const char *want_address = argv[4];
    const char *want_raw = argv[5];
    const char *want_message_sig = argv[6];
    const char *want_key_hex = argv[7];

    CustodyError err;
    memset(&err, 0xAA, sizeof err); /* garbage: every call overwrites it */
    int32_t status;
    char field[1024];

    const char *version = custody_version();
    CHECK(version != NULL && strlen(version) > 0, "a version");

    /* Misuse before anything is open. */
    CustodyKeystore *ks = (CustodyKeystore *)&err; /* not NULL: must be cleared */
    status = custody_keystore_open(dir, (const uint8_t *)"wrong", 5, &ks, &err);
    CHECK_ERR(status, err, CUSTODY_ERR_AUTH, "wrong-passphrase");
    CHECK(ks == NULL, "the handle is NULL after a failed open");
    status = custody_keystore_open(NULL, (const uint8_t *)passphrase, strlen(passphrase), &ks, &err);
    CHECK_ERR(status, err, CUSTODY_ERR_BAD_INPUT, "bad-input");
    CHECK(strcmp(err.message, "dir: null pointer") == 0, "message %s", err.message);
    status = custody_keystore_open(dir, NULL, 3, &ks, &err);
    CHECK_ERR(status, err, CUSTODY_ERR_BAD_INPUT, "bad-input");
    char *json = NULL;
    status = custody_derive(NULL, "alice", 0, &json, &err);
    CHECK_ERR(status, err, CUSTODY_ERR_BAD_INPUT, "bad-input");
    CHECK(json == NULL, "no result after a failure");
    status = custody_derive(NULL, "alice", 0, &json, NULL); /* no error struct */
    CHECK(status == CUSTODY_ERR_BAD_INPUT, "status without an error struct: %d", status);

    /* Open, derive. */
    status = custody_keystore_open(dir, (const uint8_t *)passphrase, strlen(passphrase), &ks, &err);
    CHECK_OK(status, err);
    if (ks == NULL) {
        printf("FAIL: cannot go on without a keystore\n");
        return 1;
    }
    status = custody_derive(ks, "alice", 0, &json, &err);
    CHECK_OK(status, err);
    CHECK(json_field(json, "address", field, sizeof field) && strcmp(field, want_address) == 0,
          "derived address %s, want %s", field, want_address);
    status = custody_string_free(json, &err);
    CHECK_OK(status, err);
    status = custody_string_free(json, &err); /* double free: detected */
    CHECK_ERR(status, err, CUSTODY_ERR_BAD_INPUT, "bad-input");
    status = custody_derive(ks, "\xe9t\xe9", 0, &json, &err); /* Latin-1: not UTF-8 */
    CHECK_ERR(status, err, CUSTODY_ERR_BAD_INPUT, "bad-input");
    CHECK(strcmp(err.message, "wallet: not UTF-8") == 0, "message %s", err.message);

    /* An unenrolled wallet signs without a code: bob's message. */
    const char *message = "hello from C";
    status = custody_sign_message(ks, "bob", 0, (const uint8_t *)message, strlen(message), NULL,
                                  &json, &err);
    CHECK_OK(status, err);
    CHECK(json_field(json, "signature", field, sizeof field) &&
              strcmp(field, want_message_sig) == 0,
          "message signature %s, want %s", field, want_message_sig);
    custody_string_free(json, NULL);
    status = custody_sign_message(ks, "bob", 0, NULL, 4, NULL, &json, &err); /* wrong length */
    CHECK_ERR(status, err, CUSTODY_ERR_BAD_INPUT, "bad-input");

    /* Enrol alice, then sign the transaction through the gate. */
    char code[32];
    enrol(ks, "alice", code, sizeof code);
    status = custody_sign_transaction(ks, "alice", 0, tx, NULL, &json, &err);
    CHECK_ERR(status, err, CUSTODY_ERR_AUTH, "totp-required");
    char wrong_code[32];
    strcpy(wrong_code, code);
    size_t last = strlen(wrong_code) - 1;
    wrong_code[last] = (char)('0' + (wrong_code[last] - '0' + 1) % 10);
    status = custody_sign_transaction(ks, "alice", 0, tx, wrong_code, &json, &err);
    CHECK_ERR(status, err, CUSTODY_ERR_AUTH, "totp-invalid");
    status = custody_sign_transaction(ks, "alice", 0, "{\"type\":\"0x9\"}", code, &json, &err);
    CHECK_ERR(status, err, CUSTODY_ERR_BAD_INPUT, "bad-input");
    status = custody_sign_transaction(ks, "alice", 0, tx, code, &json, &err);
    CHECK_OK(status, err);
    CHECK(json != NULL && json_field(json, "raw", field, sizeof field) && strcmp(field, want_raw) == 0,
          "raw %s, want %s", field, want_raw);
    CHECK(json != NULL && json_field(json, "from", field, sizeof field) && strcmp(field, want_address) == 0,
          "from %s, want %s", field, want_address);
    custody_string_free(json, NULL);
    status = custody_sign_transaction(ks, "alice", 0, tx, code, &json, &err);
    CHECK_ERR(status, err, CUSTODY_ERR_AUTH, "totp-replayed");

    /* Enrol dave, export his key through the gate. */
    enrol(ks, "dave", code, sizeof code);
    uint8_t *key = NULL;
    size_t key_len = 0;
    status = custody_export_private_key(ks, "dave", 0, NULL, &key, &key_len, &err);
    CHECK_ERR(status, err, CUSTODY_ERR_AUTH, "totp-required");
    CHECK(key == NULL && key_len == 0, "no key after a refusal");
    status = custody_export_private_key(ks, "dave", 0, code, &key, &key_len, &err);
    CHECK_OK(status, err);
    CHECK(key != NULL && key_len == 32, "a 32-byte key, got %zu", key_len);
    char key_hex[65] = {0};
    for (size_t i = 0; key != NULL && i < key_len && i < 32; i++) {
        snprintf(key_hex + 2 * i, 3, "%02x", key[i]);
    }
    CHECK(strcmp(key_hex, want_key_hex) == 0, "exported key differs from the Rust API's");
    status = custody_buffer_free(key, 31, &err); /* wrong length: nothing freed */
    CHECK_ERR(status, err, CUSTODY_ERR_BAD_INPUT, "bad-input");
    status = custody_string_free((char *)key, &err); /* wrong free function */
    CHECK_ERR(status, err, CUSTODY_ERR_BAD_INPUT, "bad-input");
    status = custody_buffer_free(key, key_len, &err);
    CHECK_OK(status, err);
    status = custody_buffer_free(key, key_len, &err); /* double free: detected */
    CHECK_ERR(status, err, CUSTODY_ERR_BAD_INPUT, "bad-input");

    /* Close; a closed handle is refused, and so is closing it again. */
    status = custody_keystore_free(ks, &err);
    CHECK_OK(status, err);
    status = custody_keystore_free(ks, &err);
    CHECK_ERR(status, err, CUSTODY_ERR_BAD_INPUT, "bad-input");
    status = custody_derive(ks, "alice", 0, &json, &err);
    CHECK_ERR(status, err, CUSTODY_ERR_BAD_INPUT, "bad-input");
    CHECK(custody_outstanding_buffers() == 0, "%zu buffers never freed",
          custody_outstanding_buffers());

    if (failures != 0) {
        printf("FAILED: %d of %d checks\n", failures, checks);
        return 1;
    }
    printf("ok: %d checks\n", checks);
    return 0;
}
