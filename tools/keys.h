#ifndef TLSHIM_KEYS_H
#define TLSHIM_KEYS_H

/*
 * Shared by the tlshim-keys subcommands: exit codes, argument helpers,
 * safe file handling and certificate creation with wolfSSL.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

/* Exit codes, documented in --help. */
enum keys_exit {
	KEYS_OK = 0,
	KEYS_USAGE = 1,		/* bad arguments */
	KEYS_FILE = 2,		/* missing, unreadable, corrupt or unsafe file */
	KEYS_EXISTS = 3,	/* would overwrite an existing key or cert */
	KEYS_CRYPTO = 4,	/* key or certificate generation failed */
};

#define KEYS_DEFAULT_CA_DAYS 3650
#define KEYS_DEFAULT_NODE_DAYS 7
/* NotBefore goes back this far so that nodes with slow clocks accept a
 * certificate issued seconds ago. */
#define KEYS_BACKDATE_SECONDS (10 * 60)
#define KEYS_FILE_MAX (64 * 1024)

/* One subcommand: int main(int argc, char **argv) with argv[0] its name. */
int keys_init_main(int argc, char **argv);
int keys_issue_main(int argc, char **argv);
int keys_pin_main(int argc, char **argv);
int keys_show_main(int argc, char **argv);

/* Print "tlshim-keys: " and the message to stderr; returns ${code}. */
int keys_fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* keys_name_ok(s): a cluster, node or job name: [A-Za-z0-9._-], 1-63. */
bool keys_name_ok(const char *s);

/* keys_parse_days(s, out): whole days, 1 to 36500. Returns 0 or -1. */
int keys_parse_days(const char *s, int *out);

/*
 * keys_read_file(path, is_private, buf, len):
 * Read a file of at most KEYS_FILE_MAX bytes into a new buffer (NUL
 * added); with ${is_private}, refuse a file others can read. Prints why
 * and returns KEYS_FILE on failure.
 */
int keys_read_file(const char *path, bool is_private, uint8_t **buf,
    size_t *len);

/* keys_free_secret(buf, len): wipe and free what keys_read_file gave. */
void keys_free_secret(uint8_t *buf, size_t len);

/* keys_mkdir(dir): create ${dir} (0700) if missing. KEYS_OK or KEYS_FILE. */
int keys_mkdir(const char *dir);

/*
 * keys_write_files(dir, names, data, lens, modes, count, force):
 * Write ${count} files into ${dir} all-or-nothing: each goes to a private
 * temporary file first (O_EXCL|O_NOFOLLOW, its final mode from the start),
 * then every one is renamed into place. Existing files are an error
 * (KEYS_EXISTS) unless ${force}.
 */
int keys_write_files(const char *dir, const char *const *names,
    const uint8_t *const *data, const size_t *lens, const int *modes,
    int count, bool force);

/* keys_pem(der, derlen, type, out, outlen): DER to PEM (wolfSSL type). */
int keys_pem(const uint8_t *der, size_t derlen, int type, uint8_t *out,
    size_t *outlen);

/* keys_ecc_new(rng, key): a fresh P-256 key. 0 or a wolfSSL error. */
int keys_ecc_new(WC_RNG *rng, ecc_key *key);

/* keys_ecc_from_pem(pem, len, key): load a private key. 0 or -1. */
int keys_ecc_from_pem(const uint8_t *pem, size_t len, ecc_key *key);

/* keys_set_validity(cert, days): NotBefore back-dated, NotAfter in
 * ${days}; 0 or -1. */
int keys_set_validity(Cert *cert, int days);

/* keys_set_serial(cert, rng): a random positive 16-byte serial. */
int keys_set_serial(Cert *cert, WC_RNG *rng);

#endif
