/*
 * libFuzzer: the record layer against hostile bytes. The input is read as
 * a stream of records under fixed keys: every header must be bounded
 * before use, nothing may be accepted that was not sealed with the key,
 * and a failed open leaves no plaintext. Then the input is sealed as a
 * payload and must open to itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../shim/record.h"

static const uint8_t secret[REC_SECRET_SIZE] = { 7, 7, 7 };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[REC_MAX_BODY], sealed[REC_MAX_PAYLOAD + REC_OVERHEAD];
	enum rec_cipher cipher = size > 0 && (data[0] & 1) ? REC_CHACHA20POLY1305 :
	    rec_cipher_best();
	struct rec_keys *rx = rec_keys_new(cipher, secret, 4);
	struct rec_keys *tx = rec_keys_new(cipher, secret, 4);
	size_t off = 0, len;
	int n;

	if (rx == NULL || tx == NULL)
		abort();
	while (size - off >= REC_HEADER_SIZE) {
		enum rec_type type;
		size_t body;

		if (rec_header_parse(data + off, &type, &body) != 0)
			break;
		if (body > REC_MAX_BODY)
			abort();	/* the bound the parser promises */
		if (size - off - REC_HEADER_SIZE < body)
			break;
		n = rec_open(rx, data + off, data + off + REC_HEADER_SIZE, body, out);
		if (n >= 0)
			abort();	/* forged without the key */
		off += REC_HEADER_SIZE + body;
	}
	len = size < REC_MAX_PAYLOAD ? size : REC_MAX_PAYLOAD;
	rec_seal(tx, REC_DATA, data, len, sealed);
	rec_keys_free(rx);
	rx = rec_keys_new(cipher, secret, 4);
	n = rec_open(rx, sealed, sealed + REC_HEADER_SIZE, len + REC_TAG_SIZE, out);
	if (n != (int)len || memcmp(out, data, len) != 0)
		abort();
	rec_keys_free(rx);
	rec_keys_free(tx);
	return 0;
}
