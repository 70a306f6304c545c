/*
 * libFuzzer: certificates from a hostile peer, for the subjectAltName
 * parser that binds identities to addresses. It either refuses the bytes
 * or yields names within bounds, and never reads outside them.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../shim/identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct identity_sans sans;
	char text[256];
	int rc, i;

	rc = identity_sans_of_der(data, size, &sans);
	if (rc != 0 && (rc != -EINVAL || sans.ip_count != 0))
		abort();
	if (sans.ip_count < 0 || sans.ip_count > IDENTITY_MAX_IPS)
		abort();
	for (i = 0; i < sans.ip_count; i++)
		if (sans.ip[i].family != AF_INET && sans.ip[i].family != AF_INET6)
			abort();
	if (size >= 4)
		memcpy(&sin.sin_addr, data, 4);
	(void)identity_has_address(&sans, (struct sockaddr *)&sin);
	identity_format_ips(&sans, text, sizeof(text));
	if (strlen(text) >= sizeof(text))
		abort();
	return 0;
}
