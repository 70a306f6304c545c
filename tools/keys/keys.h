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
	KEYS_DENIED = 5,	/* the enrollment server refused the request */
	KEYS_NETWORK = 6,	/* server unreachable, timed out or not speaking
				 * the enrollment protocol */
	KEYS_PIN = 7,		/* the server's CA does not match the pin */
};

/* "sha256:" and 64 hex digits, NUL. */
#define KEYS_PIN_SIZE 72

#define KEYS_DEFAULT_CA_DAYS 3650
#define KEYS_DEFAULT_NODE_DAYS 7
/* NotBefore goes back this far so that nodes with slow clocks accept a
 * certificate issued seconds ago. */
#define KEYS_BACKDATE_SECONDS (60 * 60)
#define KEYS_FILE_MAX (1024 * 1024)

/* One subcommand: int main(int argc, char **argv) with argv[0] its name. */
int keys_init_main(int argc, char **argv);
int keys_issue_main(int argc, char **argv);
int keys_pin_main(int argc, char **argv);
int keys_show_main(int argc, char **argv);
int keys_token_main(int argc, char **argv);
int keys_serve_main(int argc, char **argv);
int keys_join_main(int argc, char **argv);
int keys_renew_main(int argc, char **argv);
int keys_revoke_main(int argc, char **argv);
int keys_crl_main(int argc, char **argv);
int keys_trust_main(int argc, char **argv);

/* Print "tlshim-keys: " and the message to stderr; returns ${code}. */
int keys_fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* keys_name_ok(s): a cluster, node or job name: [A-Za-z0-9._-], 1-63. */
bool keys_name_ok(const char *s);

/* keys_parse_days(s, out): whole days, 1 to 36500. Returns 0 or -1. */
int keys_parse_days(const char *s, int *out);

/*
 * keys_parse_duration(s, out): "90s", "30m", "12h", "7d" (a bare number
 * is seconds) to seconds, 1 s to 100 years. Returns 0 or -1.
 */
int keys_parse_duration(const char *s, long *out);

/* keys_check_list(list, ip, max): a comma-separated list of at most
 * ${max} IP addresses (${ip}) or DNS names; 0, or a usage error printed. */
int keys_check_list(const char *list, bool ip, int max);

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

/* keys_set_validity(cert, seconds): NotBefore back-dated, NotAfter in
 * ${seconds}; 0 or -1. */
int keys_set_validity(Cert *cert, long seconds);

/* keys_set_serial(cert, rng): a random positive 16-byte serial. */
int keys_set_serial(Cert *cert, WC_RNG *rng);

/* A loaded cluster CA (keys_cert.c). */
struct keys_ca {
	char dir[4096];
	uint8_t *crt_pem;
	size_t crt_len;
	uint8_t der[4096];
	int der_len;
	char cluster[128];
	char pin[KEYS_PIN_SIZE];
	ecc_key key;
	bool loaded;
};

/* keys_ca_load(dir, ca): ca.crt and ca.key of CA_DIR ${dir}, checked to
 * belong together. KEYS_OK, or an exit code with the reason printed. */
int keys_ca_load(const char *dir, struct keys_ca *ca);

/* keys_ca_free(ca): wipe the CA key; NULL or a failed load is a no-op. */
void keys_ca_free(struct keys_ca *ca);

/* keys_pin_of_der(der, len, pin): the "sha256:<hex>" pin of a DER
 * certificate's SubjectPublicKeyInfo. 0 or -1. */
int keys_pin_of_der(const uint8_t *der, size_t len, char pin[KEYS_PIN_SIZE]);

/* What a certificate is issued for; the CA decides every field. */
struct keys_request {
	const char *node;
	const char *job;	/* NULL: not bound to a job */
	const char *ips;	/* comma-separated, or NULL */
	const char *dns;	/* comma-separated, or NULL */
	long seconds;		/* validity from now */
};

/*
 * keys_cert_make(ca, node_key, req, rng, der, derlen):
 * Sign a node certificate for the public key ${node_key}: one URI SAN
 * identity plus the IP and DNS SANs, not a CA, server and client auth,
 * NotBefore back-dated. ${derlen} holds the capacity and receives the
 * length. Records the certificate in CA_DIR/issued. 0 or -1.
 */
int keys_cert_make(struct keys_ca *ca, ecc_key *node_key,
    const struct keys_request *req, WC_RNG *rng, uint8_t *der, size_t *derlen);

/* keys_cert_record(ca, der, len): keep a copy in CA_DIR/issued/SERIAL.crt
 * for 'revoke --node' and the name check of 'serve'. */
void keys_cert_record(const struct keys_ca *ca, const uint8_t *der,
    size_t len);

/* keys_cert_ips(pem, len, csv, csvlen): the IP SANs of a PEM certificate,
 * comma-separated (renewal keeps them). 0 or -1. */
int keys_cert_ips(const uint8_t *pem, size_t len, char *csv, size_t csvlen);

/* One certificate the CA issued. */
struct keys_issued {
	uint8_t serial[64];
	size_t serial_len;
	char serial_hex[129];
	char uri[256];
	char key_pin[KEYS_PIN_SIZE];
	bool expired;
	char path[4500];	/* its record in CA_DIR/issued */
};

/* keys_issued_each(ca_dir, visit, arg): call ${visit} for each recorded
 * certificate until it returns non-zero (returned). -1 on a bad dir. */
int keys_issued_each(const char *ca_dir,
    int (*visit)(const struct keys_issued *, void *), void *arg);

/* Enrollment tokens (keys_token.c), stored as CA_DIR/tokens/ID holding
 * the SHA-256 of the secret, the expiry, the uses and who used them. */
#define KEYS_TOKEN_USES_MAX 8192

struct keys_token_claim {
	char id[17];
	char job[64];		/* "" when not bound to a job */
	bool repeat;		/* this node and key already used it */
	bool names_listed;	/* the token names the nodes it may enroll */
};

/*
 * keys_token_check(ca_dir, token, node, key_pin, claim, code, why, whylen):
 * Whether ${token} lets ${node} with public key ${key_pin} enroll now.
 * Returns 0 with ${claim} filled, or -1 with a protocol error code
 * (token-invalid, token-expired, token-used, name-not-allowed) in
 * ${code} (32 bytes) and a message for the operator in ${why}. The secret
 * is compared in constant time and never printed.
 */
int keys_token_check(const char *ca_dir, const char *token, const char *node,
    const char *key_pin, struct keys_token_claim *claim, char *code,
    char *why, size_t whylen);

/* keys_token_prune(ca_dir, grace): delete the token files that expired
 * more than ${grace} seconds ago (recent ones still get a clear
 * "expired"). Returns how many were deleted. */
int keys_token_prune(const char *ca_dir, long grace);

/* keys_issued_prune(ca_dir): delete the records of expired certificates
 * (they can no longer be used, so nothing needs to find them). Returns
 * how many were deleted. */
int keys_issued_prune(const char *ca_dir);

/* keys_issued_recover(ca_dir): records that a killed process left as
 * hidden temporary files are completed (a whole certificate) or removed;
 * returns how many were completed. */
int keys_issued_recover(const char *ca_dir);

/* keys_token_spend(ca_dir, claim, node, key_pin): record the use (a
 * repeat costs nothing). 0 or -1. */
int keys_token_spend(const char *ca_dir, const struct keys_token_claim *claim,
    const char *node, const char *key_pin);

/* Revocation (keys_revoke.c): CA_DIR/revoked lists "SERIALHEX UNIXTIME"
 * lines; CA_DIR/crl.pem is the signed list nodes load. */

/* keys_revoked_has(ca_dir, serial_hex): whether the serial is revoked. */
bool keys_revoked_has(const char *ca_dir, const char *serial_hex);

/* keys_crl_der(ca_dir, der, len): CA_DIR/crl.pem as DER in a new buffer;
 * 0, or -1 when there is none or it is unreadable. */
int keys_crl_der(const char *ca_dir, uint8_t **der, size_t *len);

/* CA rollover (keys_bundle.c): other CAs a CA directory's nodes must also
 * trust, one directory per line in CA_DIR/trusted. */
#define KEYS_TRUST_MAX 4

struct keys_trusted {
	int count;
	struct keys_trusted_ca {
		char dir[4096];
		uint8_t der[4096];
		size_t der_len;
	} ca[KEYS_TRUST_MAX];
};

/* keys_trusted_load(ca_dir, cluster, t): read CA_DIR/trusted (none is
 * fine); every CA named must be of ${cluster}. KEYS_OK or a code, printed. */
int keys_trusted_load(const char *ca_dir, const char *cluster,
    struct keys_trusted *t);

/* keys_trusted_add(t, dir, cluster): add the CA in ${dir} (same cluster,
 * no duplicate); keys_trusted_save(ca_dir, t) writes the list. */
int keys_trusted_add(struct keys_trusted *t, const char *dir,
    const char *cluster);
int keys_trusted_save(const char *ca_dir, const struct keys_trusted *t);

/*
 * keys_bundle_answer(ca, t, ca_out, ca_cap, ca_len, crl_out, crl_cap,
 * crl_len): what a positive answer carries: ${ca}'s certificate then the
 * trusted CAs', as DER one after another, and the CRL of each that has
 * one, read from disk now. 0, or -1 when it does not fit.
 */
int keys_bundle_answer(const struct keys_ca *ca, const struct keys_trusted *t,
    uint8_t *ca_out, size_t ca_cap, size_t *ca_len, uint8_t *crl_out,
    size_t crl_cap, size_t *crl_len);

/* keys_der_split(buf, len, starts, lens, max): the DER SEQUENCEs laid one
 * after another in ${buf}; their count, or -1 when malformed or more
 * than ${max}. */
int keys_der_split(const uint8_t *buf, size_t len, const uint8_t **starts,
    size_t *lens, int max);

/* keys_bundle_pem(der, len, type, out, outlen): such a sequence as PEM
 * blocks one after another (${outlen}: capacity in, length out). 0/-1. */
int keys_bundle_pem(const uint8_t *der, size_t len, int type, uint8_t *out,
    size_t *outlen);

/* keys_bundle_pins(pem, len, pins, max): the pin of every certificate in
 * a PEM bundle (a node's ca.crt); their count, or -1. */
int keys_bundle_pins(const uint8_t *pem, size_t len,
    char pins[][KEYS_PIN_SIZE], int max);

#endif
