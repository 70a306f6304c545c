/*
 * libFuzzer: the enrollment server parses requests from anyone who can
 * connect, and clients parse answers. Any bytes either fail cleanly (a
 * wiped message, a reason) or parse into a message that formats back and
 * parses to the same thing.
 */
#include <stdlib.h>
#include <string.h>

#include "../../tools/keys/message.h"

static struct keys_message first, second, empty;
static uint8_t again[KEYS_MESSAGE_MAX];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[160];
	long n;

	why[0] = '\0';
	if (keys_message_parse(data, size, &first, why, sizeof(why)) != 0) {
		if (why[0] == '\0' || memcmp(&first, &empty, sizeof(first)) != 0)
			abort();
		return 0;
	}
	if ((n = keys_message_format(&first, again, sizeof(again))) <= 0)
		abort();
	if (keys_message_parse(again, (size_t)n, &second, why,
	    sizeof(why)) != 0 || memcmp(&first, &second, sizeof(first)) != 0)
		abort();
	return 0;
}
