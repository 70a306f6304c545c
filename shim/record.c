#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include <sodium.h>

#include "record.h"

#define REC_IV_SIZE 12

struct rec_keys {
	/* First: libsodium needs the AES state 16-byte aligned, and
	 * sodium_malloc returns page-aligned memory. */
	crypto_aead_aes256gcm_state aes;
	uint8_t chacha_key[crypto_aead_chacha20poly1305_ietf_KEYBYTES];
	uint8_t secret[REC_SECRET_SIZE];
	uint8_t iv[REC_IV_SIZE];
	enum rec_cipher cipher;
	uint64_t sequence;
	uint64_t epoch;
	uint64_t rekey_after;
};

void
rec_hkdf_expand(const uint8_t secret[REC_SECRET_SIZE], const char *label,
    uint8_t *out, size_t outlen)
{
	crypto_auth_hmacsha256_state st;
	uint8_t block[crypto_auth_hmacsha256_BYTES];
	const uint8_t counter = 1;

	crypto_auth_hmacsha256_init(&st, secret, REC_SECRET_SIZE);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)label, strlen(label));
	crypto_auth_hmacsha256_update(&st, &counter, 1);
	crypto_auth_hmacsha256_final(&st, block);
	memcpy(out, block, outlen);
	sodium_memzero(block, sizeof(block));
	sodium_memzero(&st, sizeof(st));
}

/* Derive this epoch's key and IV from the secret. */
static void
rec_keys_derive(struct rec_keys *keys)
{
	uint8_t key[32];

	rec_hkdf_expand(keys->secret, "tlshim key", key, sizeof(key));
	rec_hkdf_expand(keys->secret, "tlshim iv", keys->iv, REC_IV_SIZE);
	if (keys->cipher == REC_AES256GCM)
		crypto_aead_aes256gcm_beforenm(&keys->aes, key);
	else
		memcpy(keys->chacha_key, key, sizeof(key));
	sodium_memzero(key, sizeof(key));
	keys->sequence = 0;
}

/* Move to the next epoch: the old secret and key are gone for good. */
static void
rec_keys_ratchet(struct rec_keys *keys)
{
	uint8_t next[REC_SECRET_SIZE];

	rec_hkdf_expand(keys->secret, "tlshim next", next, sizeof(next));
	memcpy(keys->secret, next, sizeof(next));
	sodium_memzero(next, sizeof(next));
	keys->epoch++;
	rec_keys_derive(keys);
}

enum rec_cipher
rec_cipher_best(void)
{
	if (sodium_init() < 0)
		return REC_CHACHA20POLY1305;
	return crypto_aead_aes256gcm_is_available() ? REC_AES256GCM :
	    REC_CHACHA20POLY1305;
}

struct rec_keys *
rec_keys_new(enum rec_cipher cipher, const uint8_t secret[REC_SECRET_SIZE],
    uint64_t rekey_after)
{
	struct rec_keys *keys;

	if (sodium_init() < 0)
		return NULL;
	if (cipher == REC_AES256GCM && !crypto_aead_aes256gcm_is_available())
		return NULL;
	if (cipher != REC_AES256GCM && cipher != REC_CHACHA20POLY1305)
		return NULL;
	/* A page of its own: locked (not swapped), left out of core dumps,
	 * and zeroed in a forked child, which must never reuse the parent's
	 * nonces. */
	keys = mmap(NULL, sizeof(*keys), PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (keys == MAP_FAILED)
		return NULL;
	(void)mlock(keys, sizeof(*keys));
	(void)madvise(keys, sizeof(*keys), MADV_DONTDUMP);
	(void)madvise(keys, sizeof(*keys), MADV_WIPEONFORK);
	keys->cipher = cipher;
	keys->rekey_after = rekey_after < 2 ? 2 : rekey_after;
	memcpy(keys->secret, secret, REC_SECRET_SIZE);
	rec_keys_derive(keys);
	return keys;
}

void
rec_keys_free(struct rec_keys *keys)
{
	if (keys == NULL)
		return;
	sodium_memzero(keys, sizeof(*keys));
	munlock(keys, sizeof(*keys));
	munmap(keys, sizeof(*keys));
}

uint64_t
rec_keys_sequence(const struct rec_keys *keys)
{
	return keys->sequence;
}

uint64_t
rec_keys_epoch(const struct rec_keys *keys)
{
	return keys->epoch;
}

static void
rec_nonce(const struct rec_keys *keys, uint8_t nonce[REC_IV_SIZE])
{
	int i;

	memcpy(nonce, keys->iv, REC_IV_SIZE);
	for (i = 0; i < 8; i++)
		nonce[REC_IV_SIZE - 1 - i] ^= (uint8_t)(keys->sequence >> (8 * i));
}

size_t
rec_seal(struct rec_keys *keys, enum rec_type type, const uint8_t *payload,
    size_t len, uint8_t *out)
{
	uint8_t nonce[REC_IV_SIZE];
	size_t body = len + REC_TAG_SIZE;
	unsigned long long clen;

	out[0] = (uint8_t)type;
	out[1] = (uint8_t)(body >> 16);
	out[2] = (uint8_t)(body >> 8);
	out[3] = (uint8_t)body;
	rec_nonce(keys, nonce);
	if (keys->cipher == REC_AES256GCM)
		crypto_aead_aes256gcm_encrypt_afternm(out + REC_HEADER_SIZE, &clen,
		    payload, len, out, REC_HEADER_SIZE, NULL, nonce, &keys->aes);
	else
		crypto_aead_chacha20poly1305_ietf_encrypt(out + REC_HEADER_SIZE,
		    &clen, payload, len, out, REC_HEADER_SIZE, NULL, nonce,
		    keys->chacha_key);
	keys->sequence++;
	if (type == REC_REKEY)
		rec_keys_ratchet(keys);
	return REC_HEADER_SIZE + body;
}

/* Is a REKEY record due before the next DATA record? The REKEY itself needs
 * a sequence number under the old key, hence the - 1. */
static int
rec_rekey_due(const struct rec_keys *keys)
{
	return keys->sequence >= keys->rekey_after - 1;
}

size_t
rec_seal_iov(struct rec_keys *keys, const struct iovec *iov, int iovcnt,
    size_t skip, uint8_t *out, size_t outcap, uint8_t *gather,
    size_t *consumed)
{
	size_t written = 0, total = 0;
	int i = 0;

	while (i < iovcnt && skip >= iov[i].iov_len)
		skip -= iov[i++].iov_len;
	while (i < iovcnt) {
		const uint8_t *src = (const uint8_t *)iov[i].iov_base + skip;
		size_t avail = iov[i].iov_len - skip, room, take;

		if (avail == 0) {	/* an empty piece, base possibly NULL */
			i++;
			skip = 0;
			continue;
		}
		if (rec_rekey_due(keys)) {
			if (outcap - written < REC_OVERHEAD)
				break;
			written += rec_seal(keys, REC_REKEY, NULL, 0, out + written);
		}
		if (outcap - written <= REC_OVERHEAD)
			break;
		room = outcap - written - REC_OVERHEAD;
		if (room > REC_MAX_PAYLOAD)
			room = REC_MAX_PAYLOAD;
		if (avail >= room || i == iovcnt - 1 || avail >= 4096) {
			take = avail < room ? avail : room;
			written += rec_seal(keys, REC_DATA, src, take, out + written);
			skip += take;
		} else {
			/* Gather consecutive pieces into one record. */
			take = 0;
			while (i < iovcnt && take < room) {
				size_t piece = iov[i].iov_len - skip;

				if (piece > room - take)
					piece = room - take;
				if (piece > 0)
					memcpy(gather + take, (const uint8_t *)
					    iov[i].iov_base + skip, piece);
				take += piece;
				skip += piece;
				if (skip == iov[i].iov_len) {
					i++;
					skip = 0;
				}
			}
			written += rec_seal(keys, REC_DATA, gather, take, out + written);
			total += take;
			continue;
		}
		total += take;
		if (skip == iov[i].iov_len) {
			i++;
			skip = 0;
		}
	}
	*consumed = total;
	return written;
}

int
rec_header_parse(const uint8_t header[REC_HEADER_SIZE], enum rec_type *type,
    size_t *body_len)
{
	size_t len = ((size_t)header[1] << 16) | ((size_t)header[2] << 8) |
	    header[3];

	if (header[0] != REC_DATA && header[0] != REC_CLOSE &&
	    header[0] != REC_REKEY)
		return -EPROTO;
	if (len < REC_TAG_SIZE || len > REC_MAX_BODY)
		return -EPROTO;
	if (header[0] != REC_DATA && len != REC_TAG_SIZE)
		return -EPROTO;
	*type = (enum rec_type)header[0];
	*body_len = len;
	return 0;
}

int
rec_open(struct rec_keys *keys, const uint8_t header[REC_HEADER_SIZE],
    const uint8_t *body, size_t body_len, uint8_t *out)
{
	uint8_t nonce[REC_IV_SIZE];
	unsigned long long mlen;
	int rc;

	rec_nonce(keys, nonce);
	if (keys->cipher == REC_AES256GCM)
		rc = crypto_aead_aes256gcm_decrypt_afternm(out, &mlen, NULL, body,
		    body_len, header, REC_HEADER_SIZE, nonce, &keys->aes);
	else
		rc = crypto_aead_chacha20poly1305_ietf_decrypt(out, &mlen, NULL,
		    body, body_len, header, REC_HEADER_SIZE, nonce,
		    keys->chacha_key);
	if (rc != 0) {
		sodium_memzero(out, body_len - REC_TAG_SIZE);
		return -EBADMSG;
	}
	keys->sequence++;
	if (header[0] == REC_REKEY)
		rec_keys_ratchet(keys);
	return (int)mlen;
}

int
rec_reader_iov(const struct rec_reader *r, uint8_t *body, struct iovec iov[2])
{
	if (!r->in_body) {
		if (r->header_have == REC_HEADER_SIZE)
			return 0;	/* read along with the last body */
		iov[0].iov_base = (uint8_t *)r->header + r->header_have;
		iov[0].iov_len = REC_HEADER_SIZE - r->header_have;
		return 1;
	}
	/* The body's rest and the next header: one call per record when
	 * records come back to back, and never past the next header. */
	iov[0].iov_base = body + r->body_have;
	iov[0].iov_len = r->body_len - r->body_have;
	iov[1].iov_base = (uint8_t *)r->header;
	iov[1].iov_len = REC_HEADER_SIZE;
	return 2;
}

/* A header is complete: accept it or say why not. */
static enum rec_reader_event
reader_header(struct rec_reader *r)
{
	enum rec_type type;
	size_t body_len;

	/* 0x15 is a TLS alert: the peer's TLS stack rejected the handshake
	 * this end finished. */
	if (r->header[0] == 0x15)
		return REC_READER_ALERT;
	if (rec_header_parse(r->header, &type, &body_len) != 0)
		return REC_READER_BAD;
	memcpy(r->record_header, r->header, REC_HEADER_SIZE);
	r->header_have = 0;
	r->in_body = true;
	r->type = type;
	r->body_len = body_len;
	r->body_have = 0;
	return REC_READER_BODY;
}

enum rec_reader_event
rec_reader_got(struct rec_reader *r, size_t n)
{
	size_t left;

	if (!r->in_body) {
		r->header_have += n;
		return r->header_have < REC_HEADER_SIZE ? REC_READER_MORE :
		    reader_header(r);
	}
	left = r->body_len - r->body_have;
	if (n < left) {
		r->body_have += n;
		return REC_READER_MORE;
	}
	r->body_have = r->body_len;
	r->header_have = n - left;	/* of the next record */
	r->in_body = false;
	return REC_READER_WHOLE;
}

bool
rec_reader_ready(const struct rec_reader *r, const uint8_t *ahead, size_t len)
{
	struct rec_reader s = *r;	/* a copy: the reader itself stays */
	size_t pos = 0, need;

	for (;;) {
		if (!s.in_body) {
			need = REC_HEADER_SIZE - s.header_have;
			if (len - pos < need)
				return false;
			memcpy(s.header + s.header_have, ahead + pos, need);
			pos += need;
			s.header_have = REC_HEADER_SIZE;
			if (reader_header(&s) != REC_READER_BODY)
				return true;
		}
		need = s.body_len - s.body_have;
		if (len - pos < need)
			return false;
		pos += need;
		if (s.type != REC_REKEY)
			return true;
		s.in_body = false;
		s.header_have = 0;
	}
}

bool
rec_reader_idle(const struct rec_reader *r)
{
	return !r->in_body && r->header_have == 0;
}
