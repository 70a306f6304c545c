/*
 * libFuzzer: TLSHIM_INCLUDE/TLSHIM_EXCLUDE rules from hostile text. Parsing
 * either fails cleanly (no rules, a message) or yields rules whose
 * matching is total over any address.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../shim/policy.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_rules rules;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	char text[512], err[160];
	int rc;

	if (size >= sizeof(text))
		size = sizeof(text) - 1;
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	rc = policy_parse(text, &rules, err, sizeof(err));
	if (rc != 0 && (rc != -EINVAL || rules.count != 0 || err[0] == '\0'))
		abort();
	if (rc == 0 && rules.count > POLICY_MAX_RULES)
		abort();
	if (size >= 6) {
		memcpy(&sin.sin_addr, data, 4);
		memcpy(&sin.sin_port, data + 4, 2);
	}
	if (size >= 18)
		memcpy(&sin6.sin6_addr, data + 2, 16);
	(void)policy_match(&rules, (struct sockaddr *)&sin);
	(void)policy_match(&rules, (struct sockaddr *)&sin6);
	policy_rules_free(&rules);
	return 0;
}
