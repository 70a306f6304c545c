#ifndef TLSHIM_KEYS_MESSAGE_H
#define TLSHIM_KEYS_MESSAGE_H

/*
 * The enrollment protocol's messages, spoken inside TLS 1.3 between
 * 'tlshim-keys join'/'renew' and 'tlshim-keys serve'. Pure buffers: no
 * socket, no TLS, so the parser can be fuzzed on its own.
 *
 * On the wire each message is a 4-byte big-endian length then a text body:
 *
 *	tlshim-enroll/1 VERB [CODE]\n
 *	field=value\n ...
 *
 * VERB is join, renew or crl (requests), ok or error (responses). Fields are
 * strict: unknown, repeated (except ip) or over-long fields are errors.
 * Binary fields (key, proof, cert, ca, crl) are base64 DER.
 *
 *	join:  token, node, ip*, key, proof
 *	renew: ip*, key, proof
 *	crl:   (nothing: the node's certificate in the handshake says who)
 *	ok:    cert? (for join and renew), ca, crl?
 *	error: CODE on the first line, message
 *
 * key is the new public key (SubjectPublicKeyInfo); proof is its ECDSA
 * signature over SHA-256 of the TLS exporter value "EXPORTER-tlshim
 * enroll", which proves possession and binds the request to this channel.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEYS_MESSAGE_MAX (160 * 1024)
#define KEYS_MESSAGE_IPS 8
#define KEYS_MESSAGE_TOKEN_MAX 128

enum keys_verb {
	KEYS_VERB_NONE = 0,
	KEYS_VERB_JOIN,
	KEYS_VERB_RENEW,
	KEYS_VERB_OK,
	KEYS_VERB_ERROR,
	KEYS_VERB_CRL,
};

struct keys_message {
	enum keys_verb verb;
	char code[32];			/* error: a word such as token-expired */
	char message[256];		/* error: for the operator */
	char token[KEYS_MESSAGE_TOKEN_MAX + 1];	/* secret */
	char node[64];
	char ips[KEYS_MESSAGE_IPS][48];
	int ip_count;
	uint8_t key[256];
	size_t key_len;
	uint8_t proof[128];
	size_t proof_len;
	uint8_t cert[4096];
	size_t cert_len;
	uint8_t ca[4096];
	size_t ca_len;
	uint8_t crl[96 * 1024];
	size_t crl_len;
};

/*
 * keys_message_parse(body, len, m, why, whylen):
 * Parse one message body into ${m} (cleared first). Returns 0, or -1 with
 * the reason in ${why}. Every length is bounded; nothing is trusted.
 */
int keys_message_parse(const uint8_t *body, size_t len, struct keys_message *m,
    char *why, size_t whylen);

/*
 * keys_message_format(m, out, cap):
 * Write ${m}'s body into ${out}. Returns its length, or -1 when ${m} is
 * not valid for its verb or ${cap} is too small.
 */
long keys_message_format(const struct keys_message *m, uint8_t *out,
    size_t cap);

/* keys_message_name_ok(s, len, max): a node, job or cluster name or an
 * error code: 1 to ${max} of [A-Za-z0-9._-], not starting with . or -. */
bool keys_message_name_ok(const char *s, size_t len, size_t max);

/* keys_message_wipe(m): clear ${m}, token included; NULL is a no-op. */
void keys_message_wipe(struct keys_message *m);

#endif
