/*
 * CA rollover: a CA directory may name other CAs that its nodes must also
 * trust (CA_DIR/trusted, one directory per line). Every positive answer
 * of 'serve' then carries a bundle: this CA's certificate first, then the
 * others', and a CRL of each; nodes install the bundle as ca.crt and the
 * CRLs together as crl.pem. On the wire the message's ca and crl fields
 * hold the DER elements one after another.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#include "../../shim/identity.h"
#include "keys.h"

int
keys_der_split(const uint8_t *buf, size_t len, const uint8_t **starts,
    size_t *lens, int max)
{
	int count = 0;

	while (len > 0) {
		size_t hdr = 2, body, i, nbytes;

		if (count == max || len < 2 || buf[0] != 0x30)
			return -1;
		body = buf[1];
		if (body & 0x80) {
			nbytes = body & 0x7f;
			if (nbytes == 0 || nbytes > 3 || len < 2 + nbytes)
				return -1;
			for (body = 0, i = 0; i < nbytes; i++)
				body = (body << 8) | buf[2 + i];
			hdr += nbytes;
		}
		if (body > len - hdr)
			return -1;
		starts[count] = buf;
		lens[count++] = hdr + body;
		buf += hdr + body;
		len -= hdr + body;
	}
	return count;
}

int
keys_bundle_pem(const uint8_t *der, size_t len, int type, uint8_t *out,
    size_t *outlen)
{
	const uint8_t *starts[KEYS_TRUST_MAX + 1];
	size_t lens[KEYS_TRUST_MAX + 1], used = 0, room;
	int n, i;

	if ((n = keys_der_split(der, len, starts, lens, KEYS_TRUST_MAX + 1)) <= 0)
		return -1;
	for (i = 0; i < n; i++) {
		room = *outlen - used;
		if (keys_pem(starts[i], lens[i], type, out + used, &room) != 0)
			return -1;
		used += room;
	}
	*outlen = used;
	return 0;
}

int
keys_bundle_pins(const uint8_t *pem, size_t len, char pins[][KEYS_PIN_SIZE],
    int max)
{
	static const char end[] = "-----END CERTIFICATE-----";
	const uint8_t *at = pem, *stop;
	uint8_t der[4096];
	int count = 0, n;

	while ((stop = memmem(at, len - (size_t)(at - pem), end,
	    sizeof(end) - 1)) != NULL) {
		stop += sizeof(end) - 1;
		if (count == max || (n = wc_CertPemToDer(at, (int)(stop - at), der,
		    sizeof(der), CERT_TYPE)) <= 0 ||
		    keys_pin_of_der(der, (size_t)n, pins[count]) != 0)
			return -1;
		count++;
		at = stop;
	}
	return count > 0 ? count : -1;
}

/* The DER certificate and cluster of the CA in ${dir} (no key needed). */
static int
trusted_ca_read(const char *dir, struct keys_trusted_ca *ca, char *cluster,
    size_t clusterlen)
{
	char path[4200], uri[256], name[128];
	uint8_t *pem = NULL;
	size_t pem_len = 0;
	int n;

	snprintf(ca->dir, sizeof(ca->dir), "%s", dir);
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	if (keys_read_file(path, false, &pem, &pem_len) != KEYS_OK)
		return KEYS_FILE;
	n = wc_CertPemToDer(pem, (int)pem_len, ca->der, sizeof(ca->der),
	    CERT_TYPE);
	if (n <= 0 || identity_uri_of_pem(pem, pem_len, uri, sizeof(uri)) != 0 ||
	    identity_ca_cluster(uri, name, sizeof(name)) != 0) {
		free(pem);
		return keys_fail(KEYS_FILE, "%s is not a tlshim CA", path);
	}
	free(pem);
	ca->der_len = (size_t)n;
	snprintf(cluster, clusterlen, "%s", name);
	return KEYS_OK;
}

int
keys_trusted_load(const char *ca_dir, const char *cluster,
    struct keys_trusted *t)
{
	char path[4200], line[4200], other[128];
	FILE *f;
	int rc = KEYS_OK;

	memset(t, 0, sizeof(*t));
	snprintf(path, sizeof(path), "%s/trusted", ca_dir);
	if ((f = fopen(path, "re")) == NULL)
		return errno == ENOENT ? KEYS_OK : keys_fail(KEYS_FILE,
		    "cannot read %s: %s", path, strerror(errno));
	while (rc == KEYS_OK && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '\0')
			continue;
		if (t->count == KEYS_TRUST_MAX)
			rc = keys_fail(KEYS_FILE, "%s names more than %d CAs", path,
			    KEYS_TRUST_MAX);
		else if ((rc = trusted_ca_read(line, &t->ca[t->count], other,
		    sizeof(other))) == KEYS_OK && strcmp(other, cluster) != 0)
			rc = keys_fail(KEYS_FILE, "%s/ca.crt is a CA of cluster "
			    "%s, not %s", line, other, cluster);
		else if (rc == KEYS_OK)
			t->count++;
	}
	fclose(f);
	return rc;
}

int
keys_trusted_add(struct keys_trusted *t, const char *dir, const char *cluster)
{
	char other[128];
	int rc, i;

	for (i = 0; i < t->count; i++)
		if (strcmp(t->ca[i].dir, dir) == 0)
			return KEYS_OK;
	if (t->count == KEYS_TRUST_MAX)
		return keys_fail(KEYS_USAGE, "at most %d other CAs",
		    KEYS_TRUST_MAX);
	if ((rc = trusted_ca_read(dir, &t->ca[t->count], other,
	    sizeof(other))) != KEYS_OK)
		return rc;
	if (strcmp(other, cluster) != 0)
		return keys_fail(KEYS_USAGE, "%s is a CA of cluster %s, not %s: "
		    "a rollover keeps the cluster's name (init --name %s)", dir,
		    other, cluster, cluster);
	t->count++;
	return KEYS_OK;
}

int
keys_trusted_save(const char *ca_dir, const struct keys_trusted *t)
{
	char text[KEYS_TRUST_MAX * 4200] = "";
	const char *names[1] = { "trusted" };
	const uint8_t *data[1] = { (const uint8_t *)text };
	size_t len;
	int modes[1] = { 0644 }, i;

	for (i = 0; i < t->count; i++) {
		strcat(text, t->ca[i].dir);
		strcat(text, "\n");
	}
	len = strlen(text);
	if (t->count == 0) {
		char path[4200];

		snprintf(path, sizeof(path), "%s/trusted", ca_dir);
		return unlink(path) == 0 || errno == ENOENT ? KEYS_OK :
		    keys_fail(KEYS_FILE, "cannot remove %s: %s", path,
		    strerror(errno));
	}
	return keys_write_files(ca_dir, names, data, &len, modes, 1, true);
}

/* Append ${len} bytes at ${*used} if they fit. */
static int
append(uint8_t *out, size_t cap, size_t *used, const uint8_t *data,
    size_t len)
{
	if (len > cap - *used)
		return -1;
	memcpy(out + *used, data, len);
	*used += len;
	return 0;
}

int
keys_bundle_answer(const struct keys_ca *ca, const struct keys_trusted *t,
    uint8_t *ca_out, size_t ca_cap, size_t *ca_len, uint8_t *crl_out,
    size_t crl_cap, size_t *crl_len)
{
	uint8_t *crl;
	size_t len;
	int i;

	*ca_len = 0;
	*crl_len = 0;
	if (append(ca_out, ca_cap, ca_len, ca->der, (size_t)ca->der_len) != 0)
		return -1;
	for (i = 0; i < t->count; i++)
		if (append(ca_out, ca_cap, ca_len, t->ca[i].der,
		    t->ca[i].der_len) != 0)
			return -1;
	/* CRLs are read now: a revocation needs no restart. */
	for (i = -1; i < t->count; i++) {
		crl = NULL;
		if (keys_crl_der(i < 0 ? ca->dir : t->ca[i].dir, &crl, &len) != 0)
			continue;
		if (append(crl_out, crl_cap, crl_len, crl, len) != 0) {
			free(crl);
			return -1;
		}
		free(crl);
	}
	return 0;
}
