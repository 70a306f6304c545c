#ifndef TLSHIM_RECORD_H
#define TLSHIM_RECORD_H

/*
 * The data channel's record layer: pure buffer in, buffer out, no sockets.
 *
 * Record on the wire:
 *   type (1 byte) | length (3 bytes, big-endian) | ciphertext | tag (16)
 * length counts ciphertext plus tag. The 4-byte header is the AEAD's
 * associated data; the nonce is the direction's IV XOR the 64-bit record
 * sequence number (as in TLS 1.3), so a replayed, reordered or dropped
 * record fails authentication. Types: DATA carries application bytes;
 * CLOSE (empty) is the authenticated end of stream, so truncation is
 * detected; REKEY (empty) tells the peer that the next record uses the
 * next key: secret' = HKDF-Expand(secret, "tlshim next"), sequence back to
 * 0. Keys: key = HKDF-Expand(secret, "tlshim key"), iv = HKDF-Expand(
 * secret, "tlshim iv"), the secret per direction coming from the TLS 1.3
 * exporter (see handshake.h).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define REC_HEADER_SIZE 4
#define REC_TAG_SIZE 16
#define REC_OVERHEAD (REC_HEADER_SIZE + REC_TAG_SIZE)
/* 256 KiB: measured about 20 % faster than 64 KiB on large transfers (one
 * receive call per record), and still small next to a training tensor. */
#define REC_MAX_PAYLOAD 262144
#define REC_MAX_BODY (REC_MAX_PAYLOAD + REC_TAG_SIZE)
#define REC_SECRET_SIZE 32

enum rec_type { REC_DATA = 1, REC_CLOSE = 2, REC_REKEY = 3 };
enum rec_cipher { REC_AES256GCM = 1, REC_CHACHA20POLY1305 = 2 };

/* One direction's key state; opaque. */
struct rec_keys;

/*
 * rec_keys_new(cipher, secret, rekey_after):
 * Key state for one direction from a 32-byte traffic ${secret}; a REKEY is
 * due after ${rekey_after} records under one key. The state lives in locked,
 * guarded memory. Returns NULL if memory is short or the CPU lacks the
 * cipher.
 */
struct rec_keys *rec_keys_new(enum rec_cipher cipher,
    const uint8_t secret[REC_SECRET_SIZE], uint64_t rekey_after);

/* rec_keys_free(keys): wipe and free; NULL is a no-op. */
void rec_keys_free(struct rec_keys *keys);

/* rec_cipher_best(void): AES-256-GCM where the CPU has AES-NI, else
 * ChaCha20-Poly1305. */
enum rec_cipher rec_cipher_best(void);

/*
 * rec_seal(keys, type, payload, len, out):
 * Write one record of ${type} carrying ${len} <= REC_MAX_PAYLOAD bytes to
 * ${out}, which has room for ${len} + REC_OVERHEAD. Returns its size.
 */
size_t rec_seal(struct rec_keys *keys, enum rec_type type,
    const uint8_t *payload, size_t len, uint8_t *out);

/*
 * rec_seal_iov(keys, iov, iovcnt, skip, out, outcap, gather, consumed):
 * Seal DATA records from the bytes of ${iov} after the first ${skip}, as many
 * as fit in ${outcap}, inserting a REKEY record whenever the key's limit is
 * reached; small pieces are first gathered in ${gather} (REC_MAX_PAYLOAD
 * bytes) so that a header and a body make one record. Sets ${consumed} to
 * the plaintext bytes sealed; returns the bytes written to ${out}.
 * ${outcap} >= 2 * REC_OVERHEAD + 1 guarantees progress.
 */
size_t rec_seal_iov(struct rec_keys *keys, const struct iovec *iov,
    int iovcnt, size_t skip, uint8_t *out, size_t outcap, uint8_t *gather,
    size_t *consumed);

/*
 * rec_header_parse(header, type, body_len):
 * Validate a record header before any body byte is read: a known type and a
 * length from REC_TAG_SIZE to REC_MAX_BODY. Returns 0 or -EPROTO.
 */
int rec_header_parse(const uint8_t header[REC_HEADER_SIZE], enum rec_type *type,
    size_t *body_len) __attribute__((warn_unused_result));

/*
 * The receiving side's framing, without a socket: where the next bytes of
 * the stream go, and what they complete. The caller reads into the places
 * rec_reader_iov names (a header alone, or the rest of a body together
 * with the next header: never further into the stream), reports with
 * rec_reader_got, and opens the record once it is whole.
 */
struct rec_reader {
	uint8_t header[REC_HEADER_SIZE];	/* the next header, being read */
	size_t header_have;
	uint8_t record_header[REC_HEADER_SIZE];	/* the current record's */
	bool in_body;
	enum rec_type type;
	size_t body_len, body_have;
};

/* What rec_reader_got says. */
enum rec_reader_event {
	REC_READER_MORE = 0,	/* read again */
	REC_READER_BODY = 1,	/* a header was accepted: its body comes next */
	REC_READER_WHOLE = 2,	/* a record is whole: open it */
	REC_READER_ALERT = -1,	/* a TLS alert where a record should be */
	REC_READER_BAD = -2,	/* a malformed header */
};

/*
 * rec_reader_iov(r, body, iov):
 * Where the next bytes go: fills ${iov} (one or two entries) and returns
 * how many; 0 when a whole header is already here (read with the last
 * body): then call rec_reader_got(r, 0). ${body} holds the current
 * record's body (REC_MAX_BODY bytes).
 */
int rec_reader_iov(const struct rec_reader *r, uint8_t *body,
    struct iovec iov[2]);

/*
 * rec_reader_got(r, n):
 * ${n} bytes arrived where rec_reader_iov said (0 only when it named no
 * place). After
 * REC_READER_WHOLE the record is r->record_header with r->body_len bytes
 * of body; the reader has moved on to the next record.
 */
enum rec_reader_event rec_reader_got(struct rec_reader *r, size_t n);

/*
 * rec_reader_ready(r, ahead, len):
 * Would the ${len} bytes that follow what the reader has seen complete a
 * record that a receive hands out: DATA or CLOSE, after any number of
 * REKEY records (which hand out nothing), or a malformed header or an
 * alert (a receive reports the error)? Headers only; nothing is opened.
 */
bool rec_reader_ready(const struct rec_reader *r, const uint8_t *ahead,
    size_t len);

/* rec_reader_idle(r): between records, nothing of the next one read? */
bool rec_reader_idle(const struct rec_reader *r);

/*
 * rec_open(keys, header, body, body_len, out):
 * Verify the record (${header}, ${body}) and decrypt its payload into ${out}
 * (room for body_len - REC_TAG_SIZE; may be ${body} itself). A REKEY record
 * moves ${keys} to the next key. Returns the payload length, or -EBADMSG
 * when authentication fails (${out} is then zeroed, the key state unchanged).
 */
int rec_open(struct rec_keys *keys, const uint8_t header[REC_HEADER_SIZE],
    const uint8_t *body, size_t body_len, uint8_t *out)
    __attribute__((warn_unused_result));

/* rec_keys_sequence(keys), rec_keys_epoch(keys): for tests and logs. */
uint64_t rec_keys_sequence(const struct rec_keys *keys);
uint64_t rec_keys_epoch(const struct rec_keys *keys);

/*
 * rec_hkdf_expand(secret, label, out, outlen):
 * HKDF-Expand (RFC 5869) with HMAC-SHA-256, one block: ${outlen} <= 32.
 */
void rec_hkdf_expand(const uint8_t secret[REC_SECRET_SIZE], const char *label,
    uint8_t *out, size_t outlen);

#endif
