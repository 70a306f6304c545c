#ifndef TLSHIM_IDENTITY_H
#define TLSHIM_IDENTITY_H

/*
 * What a certificate says about where its holder may be: the subject
 * alternative names, read from the certificate's DER by a small parser of
 * our own (Debian's wolfSSL is built without WOLFSSL_IP_ALT_NAME, so it
 * drops IP SANs), and the rule that binds a peer's certificate to the
 * address it was reached at or came from.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* More than this many IP SANs in one certificate is refused as malformed
 * (a multi-homed node has a handful). */
#define IDENTITY_MAX_IPS 32

struct identity_ip {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* network byte order; 4 bytes used for IPv4 */
};

struct identity_sans {
	int ip_count;
	struct identity_ip ip[IDENTITY_MAX_IPS];
	int dns_count;		/* dNSName entries (not used for binding) */
	int uri_count;		/* uniformResourceIdentifier entries */
};

/*
 * identity_sans_of_der(der, len, sans):
 * Read the subjectAltName extension of the X.509 certificate ${der}.
 * Every length is checked against what encloses it. Returns 0 (a
 * certificate without the extension has no names), or -EINVAL when the
 * DER is malformed or has more than IDENTITY_MAX_IPS addresses.
 */
int identity_sans_of_der(const uint8_t *der, size_t len,
    struct identity_sans *sans) __attribute__((warn_unused_result));

/*
 * identity_has_address(sans, addr):
 * Is the IPv4 or IPv6 socket address ${addr} (v4-mapped IPv6 counts as
 * IPv4) among the IP SANs?
 */
bool identity_has_address(const struct identity_sans *sans,
    const struct sockaddr *addr);

/*
 * identity_format_ips(sans, out, outlen):
 * The IP SANs as "198.18.0.1, 2001:2::1", or "none", for log lines.
 */
void identity_format_ips(const struct identity_sans *sans, char *out,
    size_t outlen);

/*
 * identity_format_address(addr, out, outlen):
 * "198.18.0.1:5000", "[2001:2::1]:5000" (v4-mapped shown as IPv4), or
 * "local" for a non-IP address, for log lines.
 */
void identity_format_address(const struct sockaddr *addr, char *out,
    size_t outlen);

/*
 * What tlshim's certificates carry (wolfSSL decodes, these rules decide):
 * one URI SAN, spiffe://CLUSTER/[job/JOB/]node/NAME for a node,
 * spiffe://CLUSTER/ca for a CA. Shared by the shim and tlshim-keys.
 */

struct WOLFSSL_X509;

/* identity_uri_of_x509(x509, uri, urilen): the certificate's single URI
 * SAN. 0, or -ENOENT without exactly one. */
int identity_uri_of_x509(struct WOLFSSL_X509 *x509, char *uri, size_t urilen);

/* identity_uri_of_pem(pem, len, uri, urilen), identity_uri_of_der(...):
 * the same from a PEM or DER certificate; -EINVAL when not one. */
int identity_uri_of_pem(const uint8_t *pem, size_t len, char *uri,
    size_t urilen);
int identity_uri_of_der(const uint8_t *der, size_t len, char *uri,
    size_t urilen);

/* identity_uri_cluster(uri, cluster, len): the CLUSTER of a spiffe:// URI.
 * 0 or -1. */
int identity_uri_cluster(const char *uri, char *cluster, size_t len);

/* identity_uri_job(uri, job, len): the JOB of ".../job/JOB/node/NAME",
 * or "" when the URI names none. */
void identity_uri_job(const char *uri, char *job, size_t len);

/* Names (cluster, job, node): 1 to 63 of [A-Za-z0-9._-], not starting
 * with "." or "-". */
#define IDENTITY_NAME_MAX 63

/* identity_name_ok(s, len, max): ${s} (${len} bytes) is such a name of at
 * most ${max} characters. */
bool identity_name_ok(const char *s, size_t len, size_t max);

/* identity_node_uri(cluster, job, node, uri, len): a node's identity,
 * spiffe://CLUSTER/[job/JOB/]node/NODE (${job} NULL or "": none).
 * 0, or -1 when it does not fit. */
int identity_node_uri(const char *cluster, const char *job, const char *node,
    char *uri, size_t len);

/* identity_node_split(uri, cluster, job, node): the job ("" for none) and
 * node of a node identity of ${cluster}. 0, or -1 when ${uri} is not one. */
int identity_node_split(const char *uri, const char *cluster,
    char job[IDENTITY_NAME_MAX + 1], char node[IDENTITY_NAME_MAX + 1]);

/* identity_ca_cluster(uri, cluster, len): the CLUSTER of a CA identity,
 * spiffe://CLUSTER/ca. 0 or -1. */
int identity_ca_cluster(const char *uri, char *cluster, size_t len);

/*
 * identity_key_matches(crt, crtlen, key, keylen):
 * Does the PEM private key belong to the PEM certificate? Compares the
 * public keys (wolfSSL's own check does not catch a wrong ECC key).
 */
bool identity_key_matches(const uint8_t *crt, size_t crtlen,
    const uint8_t *key, size_t keylen);

#endif
