/* The enrollment protocol's messages: parse and format (keys_message.h). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "../../shim/identity.h"
#include "message.h"

#define PROTOCOL "tlshim-enroll/1"

static const char *const verb_names[] = {
	[KEYS_VERB_JOIN] = "join",
	[KEYS_VERB_RENEW] = "renew",
	[KEYS_VERB_OK] = "ok",
	[KEYS_VERB_ERROR] = "error",
	[KEYS_VERB_CRL] = "crl",
};

/* Field presence bits, to refuse repeats and check what a verb needs. */
enum {
	HAS_TOKEN = 1 << 0, HAS_NODE = 1 << 1, HAS_KEY = 1 << 2,
	HAS_PROOF = 1 << 3, HAS_CERT = 1 << 4, HAS_CA = 1 << 5,
	HAS_CRL = 1 << 6, HAS_MESSAGE = 1 << 7,
};

static const unsigned required[] = {
	[KEYS_VERB_JOIN] = HAS_TOKEN | HAS_NODE | HAS_KEY | HAS_PROOF,
	[KEYS_VERB_RENEW] = HAS_KEY | HAS_PROOF,
	[KEYS_VERB_OK] = HAS_CA,
	[KEYS_VERB_ERROR] = 0,
	[KEYS_VERB_CRL] = 0,
};

static const unsigned allowed[] = {
	[KEYS_VERB_JOIN] = HAS_TOKEN | HAS_NODE | HAS_KEY | HAS_PROOF,
	[KEYS_VERB_RENEW] = HAS_KEY | HAS_PROOF,
	[KEYS_VERB_OK] = HAS_CERT | HAS_CA | HAS_CRL,
	[KEYS_VERB_ERROR] = HAS_MESSAGE,
	[KEYS_VERB_CRL] = 0,
};

bool
keys_message_name_ok(const char *s, size_t len, size_t max)
{
	return identity_name_ok(s, len, max);
}

static bool
text_ok(const char *s, size_t len, size_t max)
{
	size_t i;

	if (len > max)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static int
copy_text(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		return -1;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

static int
decode(uint8_t *dst, size_t cap, size_t *outlen, const char *src, size_t len)
{
	if (len == 0 || len > 4 * (cap / 3 + 1))
		return -1;
	return sodium_base642bin(dst, cap, src, len, NULL, outlen, NULL,
	    sodium_base64_VARIANT_ORIGINAL) == 0 && *outlen > 0 ? 0 : -1;
}

static int
parse_first_line(const char *line, size_t len, struct keys_message *m)
{
	const char *sp;
	size_t i, plen = strlen(PROTOCOL);

	if (len <= plen + 1 || memcmp(line, PROTOCOL, plen) != 0 ||
	    line[plen] != ' ')
		return -1;
	line += plen + 1;
	len -= plen + 1;
	sp = memchr(line, ' ', len);
	for (i = KEYS_VERB_JOIN; i <= KEYS_VERB_CRL; i++) {
		size_t vlen = sp ? (size_t)(sp - line) : len;

		if (strlen(verb_names[i]) == vlen &&
		    memcmp(line, verb_names[i], vlen) == 0)
			m->verb = (enum keys_verb)i;
	}
	if (m->verb == KEYS_VERB_NONE)
		return -1;
	if (m->verb != KEYS_VERB_ERROR)
		return sp == NULL ? 0 : -1;
	/* error CODE */
	if (sp == NULL)
		return -1;
	len -= (size_t)(sp + 1 - line);
	if (!keys_message_name_ok(sp + 1, len, sizeof(m->code) - 1))
		return -1;
	return copy_text(m->code, sizeof(m->code), sp + 1, len);
}

static int
parse_field(const char *name, size_t nlen, const char *val, size_t vlen,
    struct keys_message *m, unsigned *seen, char *why, size_t whylen)
{
	static const struct {
		const char *name;
		unsigned bit;
	} fields[] = {
		{ "token", HAS_TOKEN }, { "node", HAS_NODE }, { "key", HAS_KEY },
		{ "proof", HAS_PROOF }, { "cert", HAS_CERT }, { "ca", HAS_CA },
		{ "crl", HAS_CRL }, { "message", HAS_MESSAGE }, { "ip", 0 },
	};
	unsigned bit = 0;
	size_t i;
	bool known = false;
	int rc = -1;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (strlen(fields[i].name) == nlen &&
		    memcmp(fields[i].name, name, nlen) == 0) {
			bit = fields[i].bit;
			known = true;
		}
	if (!known || (bit != 0 && !(allowed[m->verb] & bit)) ||
	    (bit == 0 && m->verb != KEYS_VERB_JOIN &&
	    m->verb != KEYS_VERB_RENEW)) {
		snprintf(why, whylen, "unexpected field '%.*s'",
		    (int)(nlen < 32 ? nlen : 32), name);
		return -1;
	}
	if (*seen & bit) {
		snprintf(why, whylen, "repeated field '%.*s'", (int)nlen, name);
		return -1;
	}
	*seen |= bit;
	switch (bit) {
	case HAS_TOKEN:
		/* URL-safe characters only; the token module checks more. */
		if (vlen <= KEYS_MESSAGE_TOKEN_MAX &&
		    strspn(val, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789-_.") >= vlen)
			rc = copy_text(m->token, sizeof(m->token), val, vlen);
		break;
	case HAS_NODE:
		if (keys_message_name_ok(val, vlen, sizeof(m->node) - 1))
			rc = copy_text(m->node, sizeof(m->node), val, vlen);
		break;
	case HAS_MESSAGE:
		if (text_ok(val, vlen, sizeof(m->message) - 1))
			rc = copy_text(m->message, sizeof(m->message), val, vlen);
		break;
	case HAS_KEY:
		rc = decode(m->key, sizeof(m->key), &m->key_len, val, vlen);
		break;
	case HAS_PROOF:
		rc = decode(m->proof, sizeof(m->proof), &m->proof_len, val, vlen);
		break;
	case HAS_CERT:
		rc = decode(m->cert, sizeof(m->cert), &m->cert_len, val, vlen);
		break;
	case HAS_CA:
		rc = decode(m->ca, sizeof(m->ca), &m->ca_len, val, vlen);
		break;
	case HAS_CRL:
		rc = decode(m->crl, sizeof(m->crl), &m->crl_len, val, vlen);
		break;
	case 0: {	/* ip */
		char addr[48] = { 0 };
		uint8_t bin[16];

		if (m->ip_count >= KEYS_MESSAGE_IPS ||
		    copy_text(addr, sizeof(addr), val, vlen) != 0 ||
		    (inet_pton(AF_INET, addr, bin) != 1 &&
		    inet_pton(AF_INET6, addr, bin) != 1))
			break;
		memcpy(m->ips[m->ip_count++], addr, sizeof(addr));
		rc = 0;
		break;
	}
	}
	if (rc != 0)
		snprintf(why, whylen, "bad value for field '%.*s'", (int)nlen,
		    name);
	return rc;
}

int
keys_message_parse(const uint8_t *body, size_t len, struct keys_message *m,
    char *why, size_t whylen)
{
	const char *p = (const char *)body, *end = p + len, *nl, *eq;
	unsigned seen = 0;
	bool first = true;

	keys_message_wipe(m);
	if (len == 0 || len > KEYS_MESSAGE_MAX) {
		snprintf(why, whylen, "message of %zu bytes", len);
		return -1;
	}
	if (memchr(body, '\0', len) != NULL) {
		snprintf(why, whylen, "NUL byte in message");
		return -1;
	}
	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
			snprintf(why, whylen, "unterminated line");
			goto err;
		}
		if (first) {
			if (parse_first_line(p, (size_t)(nl - p), m) != 0) {
				snprintf(why, whylen, "not a %s message",
				    PROTOCOL);
				goto err;
			}
			first = false;
		} else {
			if ((eq = memchr(p, '=', (size_t)(nl - p))) == NULL ||
			    eq == p) {
				snprintf(why, whylen, "line without name=value");
				goto err;
			}
			/* parse_field reads at most up to the newline. */
			if (parse_field(p, (size_t)(eq - p), eq + 1,
			    (size_t)(nl - eq - 1), m, &seen, why, whylen) != 0)
				goto err;
		}
		p = nl + 1;
	}
	if (first || (seen & required[m->verb]) != required[m->verb]) {
		snprintf(why, whylen, "%s message lacks a required field",
		    first ? "empty" : verb_names[m->verb]);
		goto err;
	}
	return 0;
err:
	keys_message_wipe(m);
	return -1;
}

/* Append "name=" value "\n", or fail when it does not fit. */
static int
put(char **p, char *end, const char *name, const char *value)
{
	int n = snprintf(*p, (size_t)(end - *p), "%s=%s\n", name, value);

	if (n < 0 || n >= end - *p)
		return -1;
	*p += n;
	return 0;
}

static int
put_binary(char **p, char *end, const char *name, const uint8_t *data,
    size_t len)
{
	size_t nlen = strlen(name), b64 = sodium_base64_ENCODED_LEN(len,
	    sodium_base64_VARIANT_ORIGINAL);

	if (len == 0 || (size_t)(end - *p) < nlen + 1 + b64 + 1)
		return -1;
	memcpy(*p, name, nlen);
	(*p)[nlen] = '=';
	*p += nlen + 1;
	sodium_bin2base64(*p, b64, data, len, sodium_base64_VARIANT_ORIGINAL);
	*p += b64 - 1;
	*(*p)++ = '\n';
	return 0;
}

long
keys_message_format(const struct keys_message *m, uint8_t *out, size_t cap)
{
	char *p = (char *)out, *end = p + cap;
	int i, n;
	bool request = m->verb == KEYS_VERB_JOIN || m->verb == KEYS_VERB_RENEW;

	if (m->verb < KEYS_VERB_JOIN || m->verb > KEYS_VERB_CRL)
		return -1;
	n = snprintf(p, cap, "%s %s%s%s\n", PROTOCOL, verb_names[m->verb],
	    m->verb == KEYS_VERB_ERROR ? " " : "",
	    m->verb == KEYS_VERB_ERROR ? m->code : "");
	if (n < 0 || (size_t)n >= cap)
		return -1;
	p += n;
	if (m->verb == KEYS_VERB_JOIN &&
	    (put(&p, end, "token", m->token) || put(&p, end, "node", m->node)))
		return -1;
	for (i = 0; request && i < m->ip_count; i++)
		if (put(&p, end, "ip", m->ips[i]))
			return -1;
	if (request && (put_binary(&p, end, "key", m->key, m->key_len) ||
	    put_binary(&p, end, "proof", m->proof, m->proof_len)))
		return -1;
	if (m->verb == KEYS_VERB_OK &&
	    ((m->cert_len > 0 &&
	    put_binary(&p, end, "cert", m->cert, m->cert_len)) ||
	    put_binary(&p, end, "ca", m->ca, m->ca_len) ||
	    (m->crl_len > 0 && put_binary(&p, end, "crl", m->crl, m->crl_len))))
		return -1;
	if (m->verb == KEYS_VERB_ERROR && m->message[0] != '\0' &&
	    put(&p, end, "message", m->message))
		return -1;
	return (long)(p - (char *)out);
}

void
keys_message_wipe(struct keys_message *m)
{
	if (m != NULL)
		sodium_memzero(m, sizeof(*m));
}
