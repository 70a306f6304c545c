#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/x509v3.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include "identity.h"

/* DER tags this parser meets. */
#define DER_SEQUENCE 0x30
#define DER_OID 0x06
#define DER_BOOLEAN 0x01
#define DER_OCTET_STRING 0x04
#define DER_EXTENSIONS 0xa3	/* [3] EXPLICIT, in TBSCertificate */
#define SAN_DNS 0x82		/* [2] IMPLICIT IA5String */
#define SAN_URI 0x86		/* [6] IMPLICIT IA5String */
#define SAN_IP 0x87		/* [7] IMPLICIT OCTET STRING */

/* id-ce-subjectAltName, 2.5.29.17 */
static const uint8_t oid_san[] = { 0x55, 0x1d, 0x11 };

/* A window on DER bytes; every read stays inside it. */
struct der {
	const uint8_t *p;
	size_t left;
};

/*
 * Take the next element: its tag and a window on its contents. Only
 * single-byte tags and definite lengths of up to four bytes exist in
 * certificates; anything else is malformed.
 */
static int
der_next(struct der *d, uint8_t *tag, struct der *value)
{
	size_t len, i, nbytes;

	if (d->left < 2)
		return -EINVAL;
	*tag = d->p[0];
	if ((*tag & 0x1f) == 0x1f)
		return -EINVAL;
	len = d->p[1];
	d->p += 2;
	d->left -= 2;
	if (len & 0x80) {
		nbytes = len & 0x7f;
		if (nbytes == 0 || nbytes > 4 || nbytes > d->left)
			return -EINVAL;
		for (len = 0, i = 0; i < nbytes; i++)
			len = (len << 8) | d->p[i];
		d->p += nbytes;
		d->left -= nbytes;
	}
	if (len > d->left)
		return -EINVAL;
	value->p = d->p;
	value->left = len;
	d->p += len;
	d->left -= len;
	return 0;
}

/* Enter the next element, which must carry ${want}. */
static int
der_enter(struct der *d, uint8_t want, struct der *value)
{
	uint8_t tag;

	if (der_next(d, &tag, value) != 0 || tag != want)
		return -EINVAL;
	return 0;
}

/* Record one GeneralName. */
static int
sans_add(struct identity_sans *sans, uint8_t tag, const struct der *value)
{
	struct identity_ip *ip;

	if (tag == SAN_DNS)
		sans->dns_count++;
	else if (tag == SAN_URI)
		sans->uri_count++;
	if (tag != SAN_IP)
		return 0;
	/* 8 and 32 bytes are address-and-mask forms, for name
	 * constraints only: not a place a node can be. */
	if (value->left != 4 && value->left != 16)
		return -EINVAL;
	if (sans->ip_count == IDENTITY_MAX_IPS)
		return -EINVAL;
	ip = &sans->ip[sans->ip_count++];
	ip->family = value->left == 4 ? AF_INET : AF_INET6;
	memcpy(ip->addr, value->p, value->left);
	return 0;
}

/* The GeneralNames inside a subjectAltName extension's value. */
static int
sans_parse(struct der octets, struct identity_sans *sans)
{
	struct der names, name;
	uint8_t tag;

	if (der_enter(&octets, DER_SEQUENCE, &names) != 0 || octets.left != 0)
		return -EINVAL;
	while (names.left > 0) {
		if (der_next(&names, &tag, &name) != 0 ||
		    sans_add(sans, tag, &name) != 0)
			return -EINVAL;
	}
	return 0;
}

/* Walk the extensions; parse the subjectAltName (at most one). */
static int
extensions_parse(struct der explicit, struct identity_sans *sans)
{
	struct der list, ext, oid, value;
	bool seen = false;
	uint8_t tag;

	if (der_enter(&explicit, DER_SEQUENCE, &list) != 0 ||
	    explicit.left != 0)
		return -EINVAL;
	while (list.left > 0) {
		if (der_enter(&list, DER_SEQUENCE, &ext) != 0 ||
		    der_enter(&ext, DER_OID, &oid) != 0 ||
		    der_next(&ext, &tag, &value) != 0)
			return -EINVAL;
		if (tag == DER_BOOLEAN && der_next(&ext, &tag, &value) != 0)
			return -EINVAL;
		if (tag != DER_OCTET_STRING || ext.left != 0)
			return -EINVAL;
		if (oid.left != sizeof(oid_san) ||
		    memcmp(oid.p, oid_san, sizeof(oid_san)) != 0)
			continue;
		if (seen || sans_parse(value, sans) != 0)
			return -EINVAL;
		seen = true;
	}
	return 0;
}

int
identity_sans_of_der(const uint8_t *der, size_t len,
    struct identity_sans *sans)
{
	struct der all = { der, len }, cert, tbs, field;
	uint8_t tag;
	int rc;

	memset(sans, 0, sizeof(*sans));
	if (der_enter(&all, DER_SEQUENCE, &cert) != 0 ||
	    der_enter(&cert, DER_SEQUENCE, &tbs) != 0)
		return -EINVAL;
	/* Extensions are the TBSCertificate's last field, [3]. */
	while (tbs.left > 0) {
		if (der_next(&tbs, &tag, &field) != 0)
			goto err0;
		if (tag != DER_EXTENSIONS)
			continue;
		if ((rc = extensions_parse(field, sans)) != 0 || tbs.left != 0)
			goto err0;
	}
	return 0;

err0:
	memset(sans, 0, sizeof(*sans));
	return -EINVAL;
}

/* Family and address bytes of a socket address; v4-mapped becomes IPv4. */
static int
address_bytes(const struct sockaddr *addr, int *family, const uint8_t **bytes,
    uint16_t *port)
{
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)addr;

		*family = AF_INET;
		*bytes = (const uint8_t *)&sin->sin_addr;
		*port = ntohs(sin->sin_port);
		return 0;
	}
	if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)addr;

		*port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			*family = AF_INET;
			*bytes = &sin6->sin6_addr.s6_addr[12];
		} else {
			*family = AF_INET6;
			*bytes = sin6->sin6_addr.s6_addr;
		}
		return 0;
	}
	return -1;
}

bool
identity_has_address(const struct identity_sans *sans,
    const struct sockaddr *addr)
{
	const uint8_t *bytes;
	uint16_t port;
	int family, i;

	if (address_bytes(addr, &family, &bytes, &port) != 0)
		return false;
	for (i = 0; i < sans->ip_count; i++)
		if (sans->ip[i].family == family && memcmp(sans->ip[i].addr,
		    bytes, family == AF_INET ? 4 : 16) == 0)
			return true;
	return false;
}

void
identity_format_ips(const struct identity_sans *sans, char *out,
    size_t outlen)
{
	char one[INET6_ADDRSTRLEN];
	size_t used = 0;
	int i;

	snprintf(out, outlen, "none");
	for (i = 0; i < sans->ip_count && used < outlen; i++) {
		inet_ntop(sans->ip[i].family, sans->ip[i].addr, one, sizeof(one));
		used += (size_t)snprintf(out + used, outlen - used, "%s%s",
		    i > 0 ? ", " : "", one);
	}
}

void
identity_format_address(const struct sockaddr *addr, char *out, size_t outlen)
{
	char text[INET6_ADDRSTRLEN];
	const uint8_t *bytes;
	uint16_t port;
	int family;

	if (address_bytes(addr, &family, &bytes, &port) != 0) {
		snprintf(out, outlen, "local");
		return;
	}
	inet_ntop(family, bytes, text, sizeof(text));
	snprintf(out, outlen, family == AF_INET ? "%s:%u" : "[%s]:%u", text,
	    (unsigned)port);
}

/* The single URI SAN of a certificate. */
int
identity_uri_of_x509(WOLFSSL_X509 *x509, char *uri, size_t urilen)
{
	WOLFSSL_STACK *names;
	int i, n, found = 0;

	names = wolfSSL_X509_get_ext_d2i(x509, NID_subject_alt_name, NULL, NULL);
	if (names == NULL)
		return -ENOENT;
	n = wolfSSL_sk_GENERAL_NAME_num(names);
	for (i = 0; i < n; i++) {
		WOLFSSL_GENERAL_NAME *gn = wolfSSL_sk_GENERAL_NAME_value(names, i);
		const unsigned char *data;
		int len;

		if (gn == NULL || gn->type != GEN_URI)
			continue;
		data = wolfSSL_ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
		len = wolfSSL_ASN1_STRING_length(gn->d.uniformResourceIdentifier);
		if (data == NULL || len <= 0 || (size_t)len >= urilen ||
		    memchr(data, '\0', (size_t)len) != NULL) {
			found = -1;
			break;
		}
		if (found++ == 0) {
			memcpy(uri, data, (size_t)len);
			uri[len] = '\0';
		}
	}
	wolfSSL_GENERAL_NAMES_free(names);
	return found == 1 ? 0 : -ENOENT;
}

bool
identity_key_matches(const uint8_t *crt, size_t crtlen, const uint8_t *key,
    size_t keylen)
{
	unsigned char a[1024], b[1024], *der;
	int alen = sizeof(a), blen = -1, dlen;
	WOLFSSL_X509 *x509;
	word32 idx = 0;
	ecc_key ecc;

	if ((der = sodium_malloc(keylen)) == NULL)
		return false;
	dlen = wc_KeyPemToDer(key, (int)keylen, der, (int)keylen, NULL);
	if (dlen > 0 && wc_ecc_init(&ecc) == 0) {
		if (wc_EccPrivateKeyDecode(der, &idx, &ecc, (word32)dlen) == 0 &&
		    (ecc.type != ECC_PRIVATEKEY_ONLY ||
		    wc_ecc_make_pub(&ecc, NULL) == 0))
			blen = wc_EccPublicKeyToDer(&ecc, b, sizeof(b), 1);
		wc_ecc_free(&ecc);
	}
	sodium_free(der);
	if (blen <= 0)
		return false;
	x509 = wolfSSL_X509_load_certificate_buffer(crt, (int)crtlen,
	    WOLFSSL_FILETYPE_PEM);
	if (x509 == NULL)
		return false;
	if (wolfSSL_X509_get_pubkey_buffer(x509, a, &alen) != WOLFSSL_SUCCESS)
		alen = -1;
	wolfSSL_X509_free(x509);
	return alen == blen && sodium_memcmp(a, b, (size_t)alen) == 0;
}

static int
uri_of_buffer(const uint8_t *buf, size_t len, int format, char *uri,
    size_t urilen)
{
	WOLFSSL_X509 *x509;
	int rc;

	x509 = wolfSSL_X509_load_certificate_buffer(buf, (int)len, format);
	if (x509 == NULL)
		return -EINVAL;
	rc = identity_uri_of_x509(x509, uri, urilen);
	wolfSSL_X509_free(x509);
	return rc;
}

int
identity_uri_of_pem(const uint8_t *pem, size_t len, char *uri, size_t urilen)
{
	return uri_of_buffer(pem, len, WOLFSSL_FILETYPE_PEM, uri, urilen);
}

int
identity_uri_of_der(const uint8_t *der, size_t len, char *uri, size_t urilen)
{
	return uri_of_buffer(der, len, WOLFSSL_FILETYPE_ASN1, uri, urilen);
}

/* Split "spiffe://CLUSTER/..." at CLUSTER. */
int
identity_uri_cluster(const char *uri, char *cluster, size_t len)
{
	const char *start, *slash;

	if (strncmp(uri, "spiffe://", 9) != 0)
		return -1;
	start = uri + 9;
	slash = strchr(start, '/');
	if (slash == NULL || slash == start || (size_t)(slash - start) >= len)
		return -1;
	memcpy(cluster, start, (size_t)(slash - start));
	cluster[slash - start] = '\0';
	return 0;
}

/* The JOB of "spiffe://CLUSTER/job/JOB/node/NAME", or "" without one. */
void
identity_uri_job(const char *uri, char *job, size_t len)
{
	const char *start = strstr(uri + 9, "/job/"), *end;

	job[0] = '\0';
	if (start == NULL)
		return;
	start += 5;
	if ((end = strchr(start, '/')) != NULL && (size_t)(end - start) < len) {
		memcpy(job, start, (size_t)(end - start));
		job[end - start] = '\0';
	}
}

bool
identity_name_ok(const char *s, size_t len, size_t max)
{
	size_t i;

	if (len == 0 || len > max || s[0] == '.' || s[0] == '-')
		return false;
	for (i = 0; i < len; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		    ch == '-'))
			return false;
	}
	return true;
}

int
identity_node_uri(const char *cluster, const char *job, const char *node,
    char *uri, size_t len)
{
	int n;

	if (job != NULL && job[0] != '\0')
		n = snprintf(uri, len, "spiffe://%s/job/%s/node/%s", cluster,
		    job, node);
	else
		n = snprintf(uri, len, "spiffe://%s/node/%s", cluster, node);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

int
identity_node_split(const char *uri, const char *cluster,
    char job[IDENTITY_NAME_MAX + 1], char node[IDENTITY_NAME_MAX + 1])
{
	char prefix[160];
	const char *rest;
	int n = 0;

	snprintf(prefix, sizeof(prefix), "spiffe://%s/", cluster);
	if (strncmp(uri, prefix, strlen(prefix)) != 0)
		return -1;
	rest = uri + strlen(prefix);
	job[0] = '\0';
	if (sscanf(rest, "job/%63[^/]/node/%63[^/]%n", job, node, &n) == 2 &&
	    rest[n] == '\0')
		return identity_name_ok(job, strlen(job), IDENTITY_NAME_MAX) &&
		    identity_name_ok(node, strlen(node), IDENTITY_NAME_MAX) ? 0 : -1;
	job[0] = '\0';
	n = 0;
	if (sscanf(rest, "node/%63[^/]%n", node, &n) == 1 && rest[n] == '\0')
		return identity_name_ok(node, strlen(node), IDENTITY_NAME_MAX) ?
		    0 : -1;
	return -1;
}

int
identity_ca_cluster(const char *uri, char *cluster, size_t len)
{
	char name[IDENTITY_NAME_MAX + 1];
	int n = 0;

	if (sscanf(uri, "spiffe://%63[^/]/ca%n", name, &n) != 1 ||
	    uri[n] != '\0' || !identity_name_ok(name, strlen(name),
	    IDENTITY_NAME_MAX) || strlen(name) >= len)
		return -1;
	memcpy(cluster, name, strlen(name) + 1);
	return 0;
}
