/*
 * tlshim-keys revoke: add certificates to CA_DIR/revoked and write the
 * signed CRL, CA_DIR/crl.pem, that nodes load as crl.pem next to their
 * credentials (the shim refuses revoked peers on new handshakes). wolfSSL
 * 5.5 cannot write CRLs, so this module encodes the DER itself (RFC 5280
 * 5.1, v2 with a CRL number) and signs it with the CA key.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "keys.h"

#define DEFAULT_CRL_DAYS 365

/* ecdsa-with-SHA256, as an AlgorithmIdentifier. */
static const uint8_t ecdsa_sha256[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
    0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
/* id-ce-cRLNumber */
static const uint8_t crl_number_oid[] = { 0x06, 0x03, 0x55, 0x1d, 0x14 };

/* A growing DER buffer; any failure sticks, checked once at the end. */
struct der {
	uint8_t *data;
	size_t len, cap;
	bool failed;
};

static void
der_put(struct der *d, const void *bytes, size_t len)
{
	if (d->failed)
		return;
	if (d->len + len > d->cap) {
		size_t cap = (d->len + len) * 2 + 64;
		uint8_t *p = realloc(d->data, cap);

		if (p == NULL) {
			d->failed = true;
			return;
		}
		d->data = p;
		d->cap = cap;
	}
	memcpy(d->data + d->len, bytes, len);
	d->len += len;
}

/* Append TAG, the length of ${inner}, and ${inner}; frees ${inner}. */
static void
der_wrap(struct der *d, uint8_t tag, struct der *inner)
{
	uint8_t hdr[6];
	size_t n = 0, len = inner->len;

	d->failed |= inner->failed || len > 0xffffff;
	hdr[n++] = tag;
	if (len < 0x80) {
		hdr[n++] = (uint8_t)len;
	} else if (len < 0x100) {
		hdr[n++] = 0x81;
		hdr[n++] = (uint8_t)len;
	} else if (len < 0x10000) {
		hdr[n++] = 0x82;
		hdr[n++] = (uint8_t)(len >> 8);
		hdr[n++] = (uint8_t)len;
	} else {
		hdr[n++] = 0x83;
		hdr[n++] = (uint8_t)(len >> 16);
		hdr[n++] = (uint8_t)(len >> 8);
		hdr[n++] = (uint8_t)len;
	}
	der_put(d, hdr, n);
	der_put(d, inner->data, inner->len);
	free(inner->data);
	memset(inner, 0, sizeof(*inner));
}

static void
der_time(struct der *d, time_t t)
{
	struct tm tm;
	char text[20];

	gmtime_r(&t, &tm);
	if (tm.tm_year + 1900 < 2050) {
		strftime(text, sizeof(text), "%y%m%d%H%M%SZ", &tm);
		der_put(d, "\x17\x0d", 2);
		der_put(d, text, 13);
	} else {
		strftime(text, sizeof(text), "%Y%m%d%H%M%SZ", &tm);
		der_put(d, "\x18\x0f", 2);
		der_put(d, text, 15);
	}
}

/* A non-negative INTEGER from big-endian bytes. */
static void
der_uint(struct der *d, const uint8_t *bytes, size_t len)
{
	struct der inner = { 0 };

	while (len > 1 && bytes[0] == 0)
		bytes++, len--;
	if (bytes[0] & 0x80)
		der_put(&inner, "", 1);
	der_put(&inner, bytes, len);
	der_wrap(d, 0x02, &inner);
}

/* Read one TLV header at ${p}: 0 with the header and content lengths. */
static int
der_header(const uint8_t *p, size_t avail, size_t *hdr, size_t *len)
{
	size_t i, n;

	if (avail < 2)
		return -1;
	if (p[1] < 0x80) {
		*hdr = 2;
		*len = p[1];
	} else {
		n = p[1] & 0x7f;
		if (n == 0 || n > 3 || avail < 2 + n)
			return -1;
		*len = 0;
		for (i = 0; i < n; i++)
			*len = *len << 8 | p[2 + i];
		*hdr = 2 + n;
	}
	return *hdr + *len <= avail ? 0 : -1;
}

/* The subject Name of a DER certificate: Certificate { tbs { [0] version,
 * serial, signature, issuer, validity, subject ... } ... }. */
static int
cert_subject(const uint8_t *der, size_t len, const uint8_t **name,
    size_t *namelen)
{
	size_t hdr, clen, skip;
	int field;

	if (der_header(der, len, &hdr, &clen) != 0)
		return -1;		/* Certificate */
	der += hdr;
	len = clen;
	if (der_header(der, len, &hdr, &clen) != 0)
		return -1;		/* TBSCertificate */
	der += hdr;
	len = clen;
	for (field = 0; field < 6; field++) {
		if (der_header(der, len, &hdr, &clen) != 0)
			return -1;
		if (field == 0 && der[0] != 0xa0)
			field++;	/* v1: no version */
		if (field == 5) {
			*name = der;
			*namelen = hdr + clen;
			return der[0] == 0x30 ? 0 : -1;
		}
		skip = hdr + clen;
		der += skip;
		len -= skip;
	}
	return -1;
}

bool
keys_revoked_has(const char *ca_dir, const char *serial_hex)
{
	char path[4200], line[256];
	size_t n = strlen(serial_hex);
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/revoked", ca_dir);
	if ((f = fopen(path, "re")) == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strncmp(line, serial_hex, n) == 0 && line[n] == ' ';
	fclose(f);
	return found;
}

int
keys_crl_der(const char *ca_dir, uint8_t **der, size_t *len)
{
	char path[4200];
	uint8_t *pem = NULL;
	size_t pem_len = 0;
	DerBuffer *buf = NULL;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/crl.pem", ca_dir);
	if (access(path, F_OK) != 0 ||
	    keys_read_file(path, false, &pem, &pem_len) != KEYS_OK)
		return -1;
	/* wc_CertPemToDer takes certificates only: the general decoder. */
	if (wc_PemToDer(pem, (long)pem_len, CRL_TYPE, &buf, NULL, NULL,
	    NULL) == 0 && buf != NULL && buf->length > 0 &&
	    (*der = malloc(buf->length)) != NULL) {
		memcpy(*der, buf->buffer, buf->length);
		*len = buf->length;
		rc = 0;
	}
	wc_FreeDer(&buf);
	free(pem);
	return rc;
}

/* Write CA_DIR/crl.pem listing every serial in CA_DIR/revoked. */
static int
crl_write(struct keys_ca *ca, int days, int *listed)
{
	struct der tbs = { 0 }, list = { 0 }, out = { 0 }, sig = { 0 };
	struct der ext = { 0 }, exts = { 0 }, tmp = { 0 };
	const uint8_t *issuer;
	size_t issuer_len, pem_len;
	uint8_t hash[crypto_hash_sha256_BYTES], signature[80], *pem = NULL;
	uint8_t number[8];
	word32 sig_len = sizeof(signature);
	char path[4200], line[256], hex[130];
	time_t now = time(NULL);
	FILE *f;
	WC_RNG rng;
	int i, rc = KEYS_CRYPTO;

	*listed = 0;
	if (cert_subject(ca->der, (size_t)ca->der_len, &issuer, &issuer_len))
		return keys_fail(KEYS_FILE, "%s/ca.crt: cannot find its name",
		    ca->dir);
	snprintf(path, sizeof(path), "%s/revoked", ca->dir);
	if ((f = fopen(path, "re")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			uint8_t serial[64];
			size_t serial_len = 0;
			long long when;
			struct der entry = { 0 };

			if (sscanf(line, "%129s %lld", hex, &when) != 2 ||
			    sodium_hex2bin(serial, sizeof(serial), hex,
			    strlen(hex), NULL, &serial_len, NULL) != 0 ||
			    serial_len == 0)
				continue;
			der_uint(&entry, serial, serial_len);
			der_time(&entry, (time_t)when);
			der_wrap(&list, 0x30, &entry);
			(*listed)++;
		}
		fclose(f);
	}
	der_put(&tbs, "\x02\x01\x01", 3);			/* v2 */
	der_put(&tbs, ecdsa_sha256, sizeof(ecdsa_sha256));
	der_put(&tbs, issuer, issuer_len);
	der_time(&tbs, now - KEYS_BACKDATE_SECONDS);		/* thisUpdate */
	der_time(&tbs, now + (time_t)days * 86400);		/* nextUpdate */
	if (*listed > 0)
		der_wrap(&tbs, 0x30, &list);
	/* crlExtensions: a CRL number that grows with time. */
	for (i = 0; i < 8; i++)
		number[i] = (uint8_t)((unsigned long long)now >> (56 - 8 * i));
	der_put(&ext, crl_number_oid, sizeof(crl_number_oid));
	der_uint(&tmp, number, sizeof(number));
	der_wrap(&ext, 0x04, &tmp);
	der_wrap(&exts, 0x30, &ext);
	der_wrap(&tmp, 0x30, &exts);
	der_wrap(&tbs, 0xa0, &tmp);
	der_wrap(&out, 0x30, &tbs);		/* out = TBSCertList */
	if (out.failed)
		goto err;
	crypto_hash_sha256(hash, out.data, out.len);
	if (wc_InitRng(&rng) != 0)
		goto err;
	i = wc_ecc_sign_hash(hash, sizeof(hash), signature, &sig_len, &rng,
	    &ca->key);
	wc_FreeRng(&rng);
	if (i != 0)
		goto err;
	der_put(&out, ecdsa_sha256, sizeof(ecdsa_sha256));
	der_put(&sig, "", 1);			/* no unused bits */
	der_put(&sig, signature, sig_len);
	der_wrap(&out, 0x03, &sig);
	der_wrap(&tmp, 0x30, &out);		/* CertificateList */
	if (tmp.failed)
		goto err;
	pem_len = tmp.len * 2 + 128;
	if ((pem = malloc(pem_len)) == NULL ||
	    keys_pem(tmp.data, tmp.len, CRL_TYPE, pem, &pem_len) != 0)
		goto err;
	{
		const char *names[1] = { "crl.pem" };
		const uint8_t *data[1] = { pem };
		int modes[1] = { 0644 };

		rc = keys_write_files(ca->dir, names, data, &pem_len, modes, 1,
		    true);
	}
	free(pem);
	free(tmp.data);
	return rc;
err:
	free(pem);
	free(tmp.data);
	free(out.data);
	free(list.data);
	return keys_fail(rc, "cannot sign the CRL");
}

struct revoke_match {
	const char *ca_dir;
	const char *node;
	const char *job;
	const char *serial;
	char cluster[128];
	FILE *revoked;
	int count;
};

static bool
identity_matches(const struct revoke_match *m, const char *uri)
{
	char job_part[200], want[400];
	const char *tail;

	if (m->serial != NULL)
		return true;
	snprintf(want, sizeof(want), "/node/%s", m->node);
	tail = uri + strlen(uri) - strlen(want);
	if (strlen(uri) < strlen(want) || strcmp(tail, want) != 0)
		return false;
	if (m->job == NULL)
		return true;
	snprintf(job_part, sizeof(job_part), "spiffe://%s/job/%s/node/",
	    m->cluster, m->job);
	return strncmp(uri, job_part, strlen(job_part)) == 0;
}

static int
revoke_visit(const struct keys_issued *item, void *arg)
{
	struct revoke_match *m = arg;

	if ((m->serial != NULL && strcmp(item->serial_hex, m->serial) != 0) ||
	    !identity_matches(m, item->uri) ||
	    keys_revoked_has(m->ca_dir, item->serial_hex))
		return 0;
	fprintf(m->revoked, "%s %lld\n", item->serial_hex,
	    (long long)time(NULL));
	printf("revoked %s (serial %s)\n", item->uri, item->serial_hex);
	m->count++;
	return 0;
}

static void
revoke_usage(FILE *out)
{
	fprintf(out,
	    "usage: tlshim-keys revoke --ca CA_DIR (--node NAME [--job ID] | "
	    "--serial HEX)\n"
	    "                          [--crl-days N]\n\n"
	    "Revokes the node's certificates (every job's, unless --job) or "
	    "one serial,\nand writes CA_DIR/crl.pem. Without --node or --serial "
	    "it only writes a\nfresh crl.pem. Nodes refuse revoked peers once "
	    "crl.pem is in their\ncredential directory: join and renew install "
	    "it; copy it to running nodes.\n"
	    "  --crl-days N  the CRL is valid this long (default: %d); write a "
	    "new one\n                before, or nodes fail closed\n"
	    "Exit codes: 0 ok, 1 bad arguments or no such certificate, 2 file "
	    "problem,\n4 crypto failure.\n", DEFAULT_CRL_DAYS);
}

int
keys_revoke_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ca", required_argument, NULL, 'c' },
		{ "node", required_argument, NULL, 'n' },
		{ "job", required_argument, NULL, 'j' },
		{ "serial", required_argument, NULL, 's' },
		{ "crl-days", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct revoke_match m = { 0 };
	const char *ca_dir = NULL;
	char serial[130], path[4200];
	struct keys_ca ca;
	int days = DEFAULT_CRL_DAYS, ch, rc, listed = 0;
	size_t i;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': ca_dir = optarg; break;
		case 'n': m.node = optarg; break;
		case 'j': m.job = optarg; break;
		case 's':
			snprintf(serial, sizeof(serial), "%s", optarg);
			for (i = 0; serial[i]; i++)
				serial[i] = (char)tolower((unsigned char)serial[i]);
			m.serial = serial;
			break;
		case 'D':
			if (keys_parse_days(optarg, &days))
				return keys_fail(KEYS_USAGE, "--crl-days must be 1 "
				    "to 36500");
			break;
		case 'h': revoke_usage(stdout); return KEYS_OK;
		default: revoke_usage(stderr); return KEYS_USAGE;
		}
	}
	if (optind != argc || ca_dir == NULL || (m.node && m.serial) ||
	    (m.job && !m.node)) {
		revoke_usage(stderr);
		return KEYS_USAGE;
	}
	if ((m.node && !keys_name_ok(m.node)) || (m.job && !keys_name_ok(m.job)))
		return keys_fail(KEYS_USAGE, "names are 1-63 of [A-Za-z0-9._-]");
	if (m.serial && (strlen(m.serial) == 0 || strlen(m.serial) > 128 ||
	    strspn(m.serial, "0123456789abcdef") != strlen(m.serial)))
		return keys_fail(KEYS_USAGE, "--serial takes hexadecimal digits, "
		    "as 'openssl x509 -serial' prints them");
	if ((rc = keys_ca_load(ca_dir, &ca)) != KEYS_OK)
		return rc;
	if (m.node || m.serial) {
		m.ca_dir = ca_dir;
		snprintf(m.cluster, sizeof(m.cluster), "%s", ca.cluster);
		snprintf(path, sizeof(path), "%s/revoked", ca_dir);
		if ((m.revoked = fopen(path, "ae")) == NULL) {
			rc = keys_fail(KEYS_FILE, "cannot write %s: %s", path,
			    strerror(errno));
			goto out;
		}
		(void)keys_issued_each(ca_dir, revoke_visit, &m);
		if (fclose(m.revoked) != 0) {
			rc = keys_fail(KEYS_FILE, "cannot write %s", path);
			goto out;
		}
		if (m.count == 0) {
			rc = keys_fail(KEYS_USAGE, "no unrevoked certificate of "
			    "%s %s is recorded in %s/issued", m.node ? "node" :
			    "serial", m.node ? m.node : m.serial, ca_dir);
			goto out;
		}
	}
	if ((rc = crl_write(&ca, days, &listed)) == KEYS_OK)
		printf("%s/crl.pem lists %d revoked certificate%s (valid %d "
		    "days)\n", ca_dir, listed, listed == 1 ? "" : "s", days);
out:
	keys_ca_free(&ca);
	return rc;
}
