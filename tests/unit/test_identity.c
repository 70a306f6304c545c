/*
 * The subjectAltName parser that binds a peer's certificate to its
 * address: real certificates from tlshim-keys (kept as the fuzz seeds),
 * then every truncation and every flipped byte of one, which must be
 * refused or parsed within bounds, never read past the buffer.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../shim/identity.h"
#include "run_suite.h"

#define SEEDS "tests/fuzz/corpus/identity/"

static size_t
load(const char *name, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(name, "rb");
	size_t n;

	ck_assert_msg(f != NULL, "cannot open %s", name);
	n = fread(buf, 1, cap, f);
	fclose(f);
	ck_assert(n > 0 && n < cap);
	return n;
}

static struct sockaddr_storage
addr(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s6 = (void *)&ss;
	struct sockaddr_in *s4 = (void *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		s6->sin6_family = AF_INET6;
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		s4->sin_family = AF_INET;
		ck_assert_int_eq(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	return ss;
}

static bool
has(const struct identity_sans *sans, const char *ip)
{
	struct sockaddr_storage ss = addr(ip);

	return identity_has_address(sans, (struct sockaddr *)&ss);
}

START_TEST(node_with_addresses)
{
	uint8_t der[4096];
	size_t len = load(SEEDS "node-with-ips.der", der, sizeof(der));
	struct identity_sans sans;
	char text[200];

	ck_assert_int_eq(identity_sans_of_der(der, len, &sans), 0);
	ck_assert_int_eq(sans.ip_count, 2);
	ck_assert_int_eq(sans.uri_count, 1);
	ck_assert_int_eq(sans.dns_count, 1);
	ck_assert(has(&sans, "198.18.0.1"));
	ck_assert(has(&sans, "::ffff:198.18.0.1"));	/* dual-stack socket */
	ck_assert(has(&sans, "2001:2::1"));
	ck_assert(!has(&sans, "198.18.0.2"));
	ck_assert(!has(&sans, "2001:2::2"));
	identity_format_ips(&sans, text, sizeof(text));
	ck_assert_str_eq(text, "198.18.0.1, 2001:2::1");
}
END_TEST

START_TEST(node_without_addresses)
{
	uint8_t der[4096];
	size_t len = load(SEEDS "node-no-ips.der", der, sizeof(der));
	struct identity_sans sans;
	char text[200];

	ck_assert_int_eq(identity_sans_of_der(der, len, &sans), 0);
	ck_assert_int_eq(sans.ip_count, 0);
	ck_assert_int_eq(sans.uri_count, 1);
	ck_assert(!has(&sans, "198.18.0.1"));
	identity_format_ips(&sans, text, sizeof(text));
	ck_assert_str_eq(text, "none");
}
END_TEST

START_TEST(every_truncation_refused)
{
	uint8_t der[4096], *copy;
	size_t len = load(SEEDS "node-with-ips.der", der, sizeof(der)), cut;
	struct identity_sans sans;

	for (cut = 0; cut < len; cut++) {
		/* An exact-size heap copy, so a read past it is caught by
		 * the sanitizer and valgrind runs. */
		copy = malloc(cut ? cut : 1);
		memcpy(copy, der, cut);
		ck_assert_msg(identity_sans_of_der(copy, cut, &sans) == -EINVAL,
		    "a certificate cut to %zu of %zu bytes was accepted", cut, len);
		ck_assert_int_eq(sans.ip_count, 0);
		free(copy);
	}
}
END_TEST

START_TEST(every_flipped_byte_bounded)
{
	uint8_t der[4096], *copy;
	size_t len = load(SEEDS "node-with-ips.der", der, sizeof(der)), i;
	struct identity_sans sans;
	int refused = 0;

	for (i = 0; i < len; i++) {
		copy = malloc(len);
		memcpy(copy, der, len);
		copy[i] ^= 0xff;
		if (identity_sans_of_der(copy, len, &sans) != 0)
			refused++;
		ck_assert(sans.ip_count >= 0 && sans.ip_count <= IDENTITY_MAX_IPS);
		free(copy);
	}
	/* Structure bytes broken: most flips of tags and lengths show. */
	ck_assert(refused > 0);
}
END_TEST

/* An IP SAN of the address-and-mask form (8 bytes) is not an address. */
START_TEST(odd_address_length_refused)
{
	uint8_t der[4096];
	size_t len = load(SEEDS "node-with-ips.der", der, sizeof(der)), i;
	struct identity_sans sans;

	for (i = 0; i + 6 < len; i++)
		if (der[i] == 0x87 && der[i + 1] == 4 && der[i + 2] == 198 &&
		    der[i + 3] == 18)
			break;
	ck_assert(i + 6 < len);
	der[i + 1] = 3;		/* a 3-byte "address" and a stray byte */
	ck_assert_int_eq(identity_sans_of_der(der, len, &sans), -EINVAL);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("identity");
	TCase *tc = tcase_create("identity");

	tcase_add_test(tc, node_with_addresses);
	tcase_add_test(tc, node_without_addresses);
	tcase_add_test(tc, every_truncation_refused);
	tcase_add_test(tc, every_flipped_byte_bounded);
	tcase_add_test(tc, odd_address_length_refused);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
