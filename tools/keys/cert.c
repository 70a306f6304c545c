/*
 * Node certificates signed by the cluster CA: shared by 'issue' (offline)
 * and 'serve' (enrollment and renewal), and the record of every issued
 * certificate in CA_DIR/issued/ that 'serve' and 'revoke' consult.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/x509v3.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#include "../../shim/identity.h"
#include "keys.h"

int
keys_ca_load(const char *dir, struct keys_ca *ca)
{
	char path[4096], uri[256];
	uint8_t *key = NULL;
	size_t key_len = 0;
	int rc;

	memset(ca, 0, sizeof(*ca));
	snprintf(ca->dir, sizeof(ca->dir), "%s", dir);
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	if ((rc = keys_read_file(path, false, &ca->crt_pem, &ca->crt_len)) !=
	    KEYS_OK)
		return rc;
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	if ((rc = keys_read_file(path, true, &key, &key_len)) != KEYS_OK)
		goto err0;
	rc = KEYS_FILE;
	if ((ca->der_len = wc_CertPemToDer(ca->crt_pem, (int)ca->crt_len,
	    ca->der, sizeof(ca->der), CERT_TYPE)) <= 0) {
		keys_fail(rc, "%s/ca.crt is not a PEM certificate", dir);
		goto err1;
	}
	if (identity_uri_of_pem(ca->crt_pem, ca->crt_len, uri, sizeof(uri)) ||
	    identity_ca_cluster(uri, ca->cluster, sizeof(ca->cluster)) != 0) {
		keys_fail(rc, "%s/ca.crt is not a tlshim CA (no "
		    "spiffe://CLUSTER/ca identity)", dir);
		goto err1;
	}
	if (keys_ecc_from_pem(key, key_len, &ca->key) != 0) {
		keys_fail(rc, "%s/ca.key is not a PEM ECDSA private key", dir);
		goto err1;
	}
	if (!identity_key_matches(ca->crt_pem, ca->crt_len, key, key_len)) {
		wc_ecc_free(&ca->key);
		keys_fail(rc, "%s/ca.key does not match %s/ca.crt", dir, dir);
		goto err1;
	}
	if (keys_pin_of_der(ca->der, (size_t)ca->der_len, ca->pin) != 0) {
		wc_ecc_free(&ca->key);
		keys_fail(rc, "%s/ca.crt: cannot read its public key", dir);
		goto err1;
	}
	keys_free_secret(key, key_len);
	ca->loaded = true;
	return KEYS_OK;

err1:
	keys_free_secret(key, key_len);
err0:
	free(ca->crt_pem);
	ca->crt_pem = NULL;
	return rc;
}

void
keys_ca_free(struct keys_ca *ca)
{
	if (ca == NULL)
		return;
	if (ca->loaded)
		wc_ecc_free(&ca->key);	/* wipes the private scalar */
	free(ca->crt_pem);
	memset(ca, 0, sizeof(*ca));
}

int
keys_pin_of_der(const uint8_t *der, size_t len, char pin[KEYS_PIN_SIZE])
{
	WOLFSSL_X509 *x509;
	unsigned char spki[1024], hash[crypto_hash_sha256_BYTES];
	int spki_len = sizeof(spki), rc = -1;

	x509 = wolfSSL_X509_load_certificate_buffer(der, (int)len,
	    WOLFSSL_FILETYPE_ASN1);
	if (x509 == NULL)
		return -1;
	if (wolfSSL_X509_get_pubkey_buffer(x509, spki, &spki_len) ==
	    WOLFSSL_SUCCESS) {
		crypto_hash_sha256(hash, spki, (unsigned long long)spki_len);
		memcpy(pin, "sha256:", 7);
		sodium_bin2hex(pin + 7, KEYS_PIN_SIZE - 7, hash, sizeof(hash));
		rc = 0;
	}
	wolfSSL_X509_free(x509);
	return rc;
}

/* subjectAltName entries, as DER GeneralName items. */
struct san {
	uint8_t der[2048];
	size_t len;
};

static int
san_add(struct san *s, uint8_t tag, const void *data, size_t len)
{
	if (len > 250 || s->len + 2 + len > sizeof(s->der))
		return -1;
	s->der[s->len++] = tag;
	s->der[s->len++] = (uint8_t)len;
	memcpy(s->der + s->len, data, len);
	s->len += len;
	return 0;
}

/* Call ${fn} for each item of a comma-separated list until it fails. */
static int
list_each(const char *list, int (*fn)(const char *item, void *arg), void *arg)
{
	char *copy, *item, *save = NULL;
	int rc = 0;

	if (list == NULL || list[0] == '\0')
		return 0;
	if ((copy = strdup(list)) == NULL)
		return -1;
	for (item = strtok_r(copy, ",", &save); item && rc == 0;
	    item = strtok_r(NULL, ",", &save))
		rc = fn(item, arg);
	free(copy);
	return rc;
}

struct list_check {
	bool ip;
	int max, count;
};

static int
check_item(const char *item, void *arg)
{
	struct list_check *lc = arg;
	uint8_t addr[16];

	if (++lc->count > lc->max)
		return keys_fail(KEYS_USAGE, "at most %d %s", lc->max,
		    lc->ip ? "IP addresses" : "DNS names");
	if (!lc->ip && !keys_name_ok(item))
		return keys_fail(KEYS_USAGE, "bad DNS name '%s'", item);
	if (lc->ip && inet_pton(AF_INET, item, addr) != 1 &&
	    inet_pton(AF_INET6, item, addr) != 1)
		return keys_fail(KEYS_USAGE, "bad IP address '%s'", item);
	return 0;
}

int
keys_check_list(const char *list, bool ip, int max)
{
	struct list_check lc = { .ip = ip, .max = max };

	return list_each(list, check_item, &lc);
}

static int
san_add_ip(const char *item, void *arg)
{
	uint8_t addr[16];

	if (inet_pton(AF_INET, item, addr) == 1)
		return san_add(arg, 0x87, addr, 4);
	if (inet_pton(AF_INET6, item, addr) == 1)
		return san_add(arg, 0x87, addr, 16);
	return -1;
}

static int
san_add_dns(const char *item, void *arg)
{
	return san_add(arg, 0x82, item, strlen(item));
}

/* GeneralNames: SEQUENCE of the entries, with a DER length. */
static int
san_finish(const struct san *s, uint8_t *out, int cap)
{
	int hdr = s->len < 128 ? 2 : s->len < 256 ? 3 : 4;

	if ((int)s->len + hdr > cap)
		return -1;
	out[0] = 0x30;
	if (hdr == 2) {
		out[1] = (uint8_t)s->len;
	} else if (hdr == 3) {
		out[1] = 0x81;
		out[2] = (uint8_t)s->len;
	} else {
		out[1] = 0x82;
		out[2] = (uint8_t)(s->len >> 8);
		out[3] = (uint8_t)s->len;
	}
	memcpy(out + hdr, s->der, s->len);
	return (int)s->len + hdr;
}

int
keys_cert_make(struct keys_ca *ca, ecc_key *node_key,
    const struct keys_request *req, WC_RNG *rng, uint8_t *der, size_t *derlen)
{
	struct san san = { .len = 0 };
	Cert cert;
	char uri[512];
	int n;

	if (identity_node_uri(ca->cluster, req->job, req->node, uri, sizeof(uri)) ||
	    san_add(&san, 0x86, uri, strlen(uri)) ||
	    list_each(req->ips, san_add_ip, &san) ||
	    list_each(req->dns, san_add_dns, &san))
		return -1;
	wc_InitCert(&cert);
	cert.sigType = CTC_SHA256wECDSA;
	cert.isCA = 0;
	snprintf(cert.subject.commonName, CTC_NAME_SIZE, "%s", req->node);
	snprintf(cert.subject.org, CTC_NAME_SIZE, "%.63s", ca->cluster);
	if ((n = san_finish(&san, cert.altNames, sizeof(cert.altNames))) < 0 ||
	    keys_set_validity(&cert, req->seconds) ||
	    keys_set_serial(&cert, rng) ||
	    wc_SetIssuerBuffer(&cert, ca->der, ca->der_len) != 0 ||
	    wc_SetAuthKeyIdFromCert(&cert, ca->der, ca->der_len) != 0 ||
	    wc_SetSubjectKeyIdFromPublicKey_ex(&cert, ECC_TYPE, node_key) != 0 ||
	    wc_SetKeyUsage(&cert, "digitalSignature") != 0 ||
	    wc_SetExtKeyUsage(&cert, "serverAuth,clientAuth") != 0)
		return -1;
	cert.altNamesSz = n;
	cert.selfSigned = 0;
	if (wc_MakeCert_ex(&cert, der, (word32)*derlen, ECC_TYPE, node_key,
	    rng) < 0 ||
	    (n = wc_SignCert_ex(cert.bodySz, cert.sigType, der, (word32)*derlen,
	    ECC_TYPE, &ca->key, rng)) < 0)
		return -1;
	*derlen = (size_t)n;
	keys_cert_record(ca, der, *derlen);
	return 0;
}

void
keys_cert_record(const struct keys_ca *ca, const uint8_t *der, size_t len)
{
	WOLFSSL_X509 *x509;
	uint8_t serial[64], pem[8192];
	int serial_len = sizeof(serial);
	size_t pem_len = sizeof(pem);
	char dir[4200], hex[2 * sizeof(serial) + 1];

	x509 = wolfSSL_X509_load_certificate_buffer(der, (int)len,
	    WOLFSSL_FILETYPE_ASN1);
	if (x509 == NULL)
		return;
	if (wolfSSL_X509_get_serial_number(x509, serial, &serial_len) ==
	    WOLFSSL_SUCCESS && keys_pem(der, len, CERT_TYPE, pem, &pem_len) == 0) {
		const char *names[1] = { NULL };
		const uint8_t *data[1] = { pem };
		int modes[1] = { 0644 };
		char name[160];

		sodium_bin2hex(hex, sizeof(hex), serial, (size_t)serial_len);
		snprintf(dir, sizeof(dir), "%s/issued", ca->dir);
		snprintf(name, sizeof(name), "%s.crt", hex);
		names[0] = name;
		/* The record serves revocation by name; a CA directory we
		 * cannot write to still issues (it is said, not fatal). */
		if (keys_mkdir(dir) != KEYS_OK ||
		    keys_write_files(dir, names, data, &pem_len, modes, 1,
		    false) != KEYS_OK)
			fprintf(stderr, "tlshim-keys: warning: certificate %s "
			    "not recorded in %s; 'revoke --node' will not find "
			    "it\n", hex, dir);
	}
	wolfSSL_X509_free(x509);
}

int
keys_issued_each(const char *ca_dir,
    int (*visit)(const struct keys_issued *, void *), void *arg)
{
	char dir[4200], path[4500];
	struct dirent *entry;
	DIR *d;
	int rc = 0;

	snprintf(dir, sizeof(dir), "%s/issued", ca_dir);
	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while (rc == 0 && (entry = readdir(d)) != NULL) {
		struct keys_issued item;
		WOLFSSL_X509 *x509;
		uint8_t serial[64];
		int serial_len = sizeof(serial), days = 0, secs = 0;
		size_t n = strlen(entry->d_name);
		unsigned char spki[1024], hash[crypto_hash_sha256_BYTES];
		int spki_len = sizeof(spki), der_len = 0;
		const uint8_t *cert_der;

		if (entry->d_name[0] == '.' || n < 5 ||
		    strcmp(entry->d_name + n - 4, ".crt") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
		x509 = wolfSSL_X509_load_certificate_file(path,
		    WOLFSSL_FILETYPE_PEM);
		if (x509 == NULL)
			continue;
		memset(&item, 0, sizeof(item));
		snprintf(item.path, sizeof(item.path), "%s", path);
		if (wolfSSL_X509_get_serial_number(x509, serial, &serial_len) ==
		    WOLFSSL_SUCCESS &&
		    wolfSSL_X509_get_pubkey_buffer(x509, spki, &spki_len) ==
		    WOLFSSL_SUCCESS) {
			item.serial_len = (size_t)serial_len;
			memcpy(item.serial, serial, item.serial_len);
			sodium_bin2hex(item.serial_hex, sizeof(item.serial_hex),
			    serial, item.serial_len);
			crypto_hash_sha256(hash, spki,
			    (unsigned long long)spki_len);
			memcpy(item.key_pin, "sha256:", 7);
			sodium_bin2hex(item.key_pin + 7, sizeof(item.key_pin) - 7,
			    hash, sizeof(hash));
			if (wolfSSL_ASN1_TIME_diff(&days, &secs, NULL,
			    wolfSSL_X509_get_notAfter(x509)) == WOLFSSL_SUCCESS)
				item.expired = days < 0 || (days == 0 &&
				    secs <= 0);
			cert_der = wolfSSL_X509_get_der(x509, &der_len);
			if (cert_der == NULL || identity_uri_of_der(cert_der,
			    (size_t)der_len,
			    item.uri, sizeof(item.uri)) != 0)
				item.uri[0] = '\0';
			rc = visit(&item, arg);
		}
		wolfSSL_X509_free(x509);
	}
	closedir(d);
	return rc;
}

int
keys_cert_ips(const uint8_t *pem, size_t len, char *csv, size_t csvlen)
{
	struct identity_sans sans;
	uint8_t der[8192];
	int n, i;

	csv[0] = '\0';
	/* The shim's parser: Debian's wolfSSL drops IP SANs. */
	if ((n = wc_CertPemToDer(pem, (int)len, der, sizeof(der),
	    CERT_TYPE)) <= 0 || identity_sans_of_der(der, (size_t)n, &sans) != 0)
		return -1;
	for (i = 0; i < sans.ip_count; i++) {
		char ip[INET6_ADDRSTRLEN];

		if (inet_ntop(sans.ip[i].family, sans.ip[i].addr, ip,
		    sizeof(ip)) == NULL || strlen(csv) + strlen(ip) + 2 > csvlen)
			continue;
		if (csv[0] != '\0')
			strcat(csv, ",");
		strcat(csv, ip);
	}
	return 0;
}

/*
 * A record that a killed process left half-way: ".SERIAL.crt.PID.tmp".
 * The certificate was signed (and may have reached its node), so a
 * complete one becomes its record, where revoke finds it; anything else
 * is removed. A live writer's file is left alone.
 */
static int
recover_one(const char *dir, const char *name)
{
	char path[4500], final[4500], record[160];
	const char *pid_at, *end = name + strlen(name) - 4;
	WOLFSSL_X509 *x509;
	long pid;

	if (name[0] != '.' || strlen(name) < 10 || strcmp(end, ".tmp") != 0)
		return 0;
	for (pid_at = end; pid_at > name && pid_at[-1] != '.'; pid_at--)
		;
	pid = strtol(pid_at, NULL, 10);
	if (pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno == EPERM))
		return 0;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(record, sizeof(record), "%.*s", (int)(pid_at - 1 - (name + 1)),
	    name + 1);
	x509 = wolfSSL_X509_load_certificate_file(path, WOLFSSL_FILETYPE_PEM);
	if (x509 != NULL && strlen(record) > 4 &&
	    strcmp(record + strlen(record) - 4, ".crt") == 0) {
		wolfSSL_X509_free(x509);
		snprintf(final, sizeof(final), "%s/%s", dir, record);
		if (rename(path, final) == 0)
			return 1;
	} else if (x509 != NULL) {
		wolfSSL_X509_free(x509);
	}
	(void)unlink(path);
	return 0;
}

int
keys_issued_recover(const char *ca_dir)
{
	char dir[4200];
	struct dirent *entry;
	int completed = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/issued", ca_dir);
	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((entry = readdir(d)) != NULL)
		completed += recover_one(dir, entry->d_name);
	closedir(d);
	return completed;
}

static int
unlink_expired(const struct keys_issued *item, void *arg)
{
	if (item->expired && unlink(item->path) == 0)
		(*(int *)arg)++;
	return 0;
}

int
keys_issued_prune(const char *ca_dir)
{
	int pruned = 0;

	(void)keys_issued_each(ca_dir, unlink_expired, &pruned);
	return pruned;
}
