#ifndef TLSHIM_CREDS_H
#define TLSHIM_CREDS_H

/*
 * The node's credentials in TLSHIM_DIR: ca.crt (one or more CAs),
 * node.crt, node.key (0600) and, optionally, crl.pem (one CRL per CA).
 * Loaded on first use into one client and one server wolfSSL context, and
 * loaded again when a file changes (renewal), so that new connections use
 * the new files while live ones keep theirs. Missing, unreadable, unsafe
 * or corrupt files fail new connections closed, with the reason.
 */

#include <stdbool.h>
#include <stddef.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

/*
 * creds_session_new(is_client, cluster, clusterlen, job, joblen, err,
 * errlen):
 * A new TLS 1.3 session (mutual authentication, AEAD suites only, X25519
 * first) from the current credentials, with the cluster and the job (or
 * "") that our own certificate names. NULL with the reason in ${err}.
 */
WOLFSSL *creds_session_new(bool is_client, char *cluster, size_t clusterlen,
    char *job, size_t joblen, char *err, size_t errlen);

#endif
