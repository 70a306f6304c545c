#ifndef TLSHIM_CONFIG_H
#define TLSHIM_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "policy.h"

/*
 * The shim's configuration, read once from the environment and immutable
 * afterwards. A configuration error does not stop the process: it is kept
 * in ${error}, and every connection the policy would protect fails closed.
 */
struct config {
	bool enabled;			/* TLSHIM=1 */
	char dir[PATH_MAX];		/* TLSHIM_DIR */
	bool loopback;			/* TLSHIM_LOOPBACK=1 */
	struct policy_rules include;	/* TLSHIM_INCLUDE */
	struct policy_rules exclude;	/* TLSHIM_EXCLUDE */
	/* TLSHIM_PEERS: the job's nodes; with it, only connections to them
	 * are protected (incoming ones on every port). */
	struct policy_rules peers;
	bool peers_set;
	/* TLSHIM_TRUST_NAT: peers at these addresses are not required to
	 * carry the address in their certificate (NAT, changing pod IPs). */
	struct policy_rules trust_nat;
	char job[128];			/* TLSHIM_JOB, "" when unset */
	bool strict;			/* TLSHIM_STRICT=1: no io_uring */
	int handshake_timeout_ms;	/* TLSHIM_HANDSHAKE_TIMEOUT, seconds */
	uint64_t rekey_records;		/* TLSHIM_REKEY_RECORDS (tests) */
	char error[256];		/* "" when the configuration is valid */
};

/* Defaults. */
#define CONFIG_DEFAULT_DIR "/etc/tlshim"
#define CONFIG_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
/* RFC 8446 5.5 allows about 2^24.5 records of 2^14 bytes (2^34.5 AES
 * blocks) per AES-GCM key. Records of up to 2^18 bytes make that 2^20.5;
 * rekeying every 2^20 records (256 GiB) keeps a margin. */
#define CONFIG_DEFAULT_REKEY_RECORDS (UINT64_C(1) << 20)

/*
 * config_load(cfg, getenv_fn):
 * Fill ${cfg} from the variables that ${getenv_fn} returns (getenv in the
 * shim, a table in tests). Never fails: problems go to ${cfg->error}.
 */
void config_load(struct config *cfg, const char *(*getenv_fn)(const char *));

/* config_free(cfg): release what config_load allocated. */
void config_free(struct config *cfg);

/* The process-wide configuration, loaded by config_init(). */
extern struct config config;

/* config_init(void): load the process-wide configuration and open the log. */
void config_init(void);

#endif
