#ifndef TLSHIM_KEYS_ENROLL_H
#define TLSHIM_KEYS_ENROLL_H

/*
 * A node's side of enrollment, shared by join, renew and crl: the request
 * over TLS pinned to the CA, the checks on the answer, and the files.
 *
 * The node's private key is made here and never leaves the node. Until
 * the certificate arrives it waits in NODE_DIR/.pending.key (0600), so a
 * retried join (the answer was lost, the disk was full) asks again for the
 * same key, which the server treats as the same enrollment: a failed first
 * attempt does not burn a single-use token.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls.h"

#define DEFAULT_TIMEOUT 10
#define DEFAULT_RETRIES 3

struct enroll {
	const char *server;
	const char *dir;
	const char *pin;
	int timeout;
	int retries;
	/* renew: the node's current credentials, for mutual TLS, and the
	 * other CAs of its bundle (a rollover's new CA answers too) */
	char (*more_pins)[KEYS_PIN_SIZE];
	int more_count;
	const uint8_t *crt;
	size_t crt_len;
	const uint8_t *key;
	size_t key_len;
	ecc_key new_key;
	uint8_t key_pem[1024];
	size_t key_pem_len;
	struct keys_message *req;
	struct keys_message *resp;
	bool sent;		/* a request reached the server */
};


/* A node's current credentials, checked to be usable for mutual TLS. */
struct node_files {
	uint8_t *ca, *crt, *key;
	size_t ca_len, crt_len, key_len;
	/* of each CA in ca.crt: the server must have one */
	char pins[KEYS_TRUST_MAX + 1][KEYS_PIN_SIZE];
	int pin_count;
	long left;			/* seconds until node.crt expires */
};

bool enroll_pin_ok(const char *pin);

/* The pin of the first CA certificate of an answer's bundle. */
int enroll_first_pin(const struct keys_message *resp, char
    pin[KEYS_PIN_SIZE]);

/* Key, channel, request, files: what join and renew share once their
 * request is ready. ${key} authenticates the channel for renew. */
int enroll_request(struct enroll *e, const uint8_t *key, size_t key_len);

/* --timeout and --retries, common to join and renew. */
int enroll_parse_attempts(int ch, const char *arg, struct enroll *e);

int enroll_alloc(struct enroll *e);

void enroll_free(struct enroll *e);

int enroll_add_ips(struct keys_message *req, const char *list);

void enroll_node_files_free(struct node_files *nf);

int enroll_node_files_load(const char *dir, struct node_files *nf);

#endif
