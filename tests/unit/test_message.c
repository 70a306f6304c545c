/* The enrollment protocol's messages: round trips and hostile input. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "../../tools/keys/message.h"
#include "run_suite.h"

static struct keys_message a, b;
static uint8_t buf[KEYS_MESSAGE_MAX];

static int
parse_text(const char *text, char *why)
{
	return keys_message_parse((const uint8_t *)text, strlen(text), &b, why,
	    160);
}

START_TEST(join_round_trip)
{
	char why[160];
	long n;

	memset(&a, 0, sizeof(a));
	a.verb = KEYS_VERB_JOIN;
	snprintf(a.token, sizeof(a.token), "0123456789abcdef.%s",
	    "SyxWWHni93UaMPtnH2rpXY3oSCKU9hjTklH0RwtZm_Y");
	snprintf(a.node, sizeof(a.node), "gpu-07.rack2");
	snprintf(a.ips[0], sizeof(a.ips[0]), "198.18.0.7");
	snprintf(a.ips[1], sizeof(a.ips[1]), "2001:2::7");
	a.ip_count = 2;
	memset(a.key, 0x30, 91);
	a.key_len = 91;
	memset(a.proof, 0x45, 71);
	a.proof_len = 71;
	n = keys_message_format(&a, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(keys_message_parse(buf, (size_t)n, &b, why,
	    sizeof(why)), 0);
	ck_assert_int_eq(b.verb, KEYS_VERB_JOIN);
	ck_assert_str_eq(b.token, a.token);
	ck_assert_str_eq(b.node, a.node);
	ck_assert_int_eq(b.ip_count, 2);
	ck_assert_str_eq(b.ips[1], "2001:2::7");
	ck_assert_uint_eq(b.key_len, 91);
	ck_assert_mem_eq(b.key, a.key, 91);
	ck_assert_uint_eq(b.proof_len, 71);
	keys_message_wipe(&b);
	ck_assert_str_eq(b.token, "");
}
END_TEST

START_TEST(answers_round_trip)
{
	char why[160];
	long n;

	memset(&a, 0, sizeof(a));
	a.verb = KEYS_VERB_OK;
	memset(a.cert, 1, 700);
	a.cert_len = 700;
	memset(a.ca, 2, 600);
	a.ca_len = 600;
	memset(a.crl, 3, 50000);
	a.crl_len = 50000;
	n = keys_message_format(&a, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(keys_message_parse(buf, (size_t)n, &b, why,
	    sizeof(why)), 0);
	ck_assert_uint_eq(b.crl_len, 50000);
	ck_assert_mem_eq(b.crl, a.crl, 50000);

	memset(&a, 0, sizeof(a));
	a.verb = KEYS_VERB_ERROR;
	snprintf(a.code, sizeof(a.code), "token-expired");
	snprintf(a.message, sizeof(a.message), "token 0123 expired 5 s ago");
	n = keys_message_format(&a, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(keys_message_parse(buf, (size_t)n, &b, why,
	    sizeof(why)), 0);
	ck_assert_str_eq(b.code, "token-expired");
	ck_assert_str_eq(b.message, a.message);
}
END_TEST

START_TEST(hostile_input_is_refused)
{
	static const char *const bad[] = {
		"",
		"GET / HTTP/1.1\n\n",
		"tlshim-enroll/1 join\n",			/* no fields */
		"tlshim-enroll/2 ok\ncert=AQ==\nca=AQ==\n",	/* version */
		"tlshim-enroll/1 ok\ncert=AQ==\nca=AQ==",	/* no newline */
		"tlshim-enroll/1 ok\ncert=AQ==\ncert=AQ==\nca=AQ==\n",
		"tlshim-enroll/1 ok\ncert=AQ==\nca=AQ==\ntoken=x\n",
		"tlshim-enroll/1 ok\ncert=!!!!\nca=AQ==\n",
		"tlshim-enroll/1 ok\ncert=\nca=AQ==\n",
		"tlshim-enroll/1 ok\ncert=AQ==\nca=AQ==\nwho=me\n",
		"tlshim-enroll/1 ok\ncert=AQ==\nca=AQ==\nip=1.2.3.4\n",
		"tlshim-enroll/1 error\nmessage=x\n",		/* no code */
		"tlshim-enroll/1 error a b\n",
		"tlshim-enroll/1 error ok\nmessage=tab\there\n",
		"tlshim-enroll/1 renew\nkey=AQ==\nproof=AQ==\nip=300.1.1.1\n",
		"tlshim-enroll/1 renew\nkey=AQ==\nproof=AQ==\n=x\n",
		"tlshim-enroll/1 renew\nkey=AQ==\nproof=AQ==\nnoequals\n",
		"tlshim-enroll/1 join\ntoken=a b\nnode=n\nkey=AQ==\nproof=AQ==\n",
		"tlshim-enroll/1 join\ntoken=t\nnode=*\nkey=AQ==\nproof=AQ==\n",
		"tlshim-enroll/1 join\ntoken=t\nnode=../x\nkey=AQ==\nproof=AQ==\n",
		"tlshim-enroll/1 join\ntoken=t\nnode=n\nkey=AQ==\n",
	};
	char why[160];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		ck_assert_msg(parse_text(bad[i], why) == -1, "accepted #%zu", i);
		ck_assert_msg(why[0] != '\0', "no reason for #%zu", i);
		ck_assert_int_eq(b.verb, KEYS_VERB_NONE);
	}
	/* Nine IP addresses are one too many. */
	{
		char text[1024] = "tlshim-enroll/1 renew\nkey=AQ==\nproof=AQ==\n";

		for (i = 0; i < 9; i++)
			snprintf(text + strlen(text), sizeof(text) - strlen(text),
			    "ip=198.18.0.%zu\n", i);
		ck_assert_int_eq(parse_text(text, why), -1);
	}
	/* A certificate larger than its buffer. */
	{
		static char text[16384];
		size_t len;

		len = (size_t)snprintf(text, sizeof(text),
		    "tlshim-enroll/1 ok\nca=AQ==\ncert=");
		memset(text + len, 'A', 8000);
		memcpy(text + len + 8000, "\n", 2);
		ck_assert_int_eq(parse_text(text, why), -1);
	}
	/* Bytes after a NUL are not hidden from the parser. */
	ck_assert_int_eq(keys_message_parse((const uint8_t *)
	    "tlshim-enroll/1 ok\0\ncert=AQ==\nca=AQ==\n", 37, &b, why,
	    sizeof(why)), -1);
}
END_TEST

/* crl: a request with no fields (the handshake's certificate says who);
 * its answer carries the CA and the CRL but no certificate. */
START_TEST(crl_request_and_answer)
{
	char why[160];

	ck_assert_int_eq(parse_text("tlshim-enroll/1 crl\n", why), 0);
	ck_assert_int_eq(b.verb, KEYS_VERB_CRL);
	ck_assert_int_eq(parse_text("tlshim-enroll/1 crl\nkey=AQ==\n", why), -1);
	ck_assert_int_eq(parse_text("tlshim-enroll/1 ok\nca=AQ==\ncrl=Ag==\n",
	    why), 0);
	ck_assert_uint_eq(b.cert_len, 0);
	ck_assert_uint_eq(b.crl_len, 1);
	ck_assert_int_eq(parse_text("tlshim-enroll/1 ok\ncrl=Ag==\n", why), -1);
}
END_TEST

START_TEST(format_refuses_what_parse_would)
{
	memset(&a, 0, sizeof(a));
	a.verb = KEYS_VERB_OK;		/* no certificate */
	ck_assert_int_eq(keys_message_format(&a, buf, sizeof(buf)), -1);
	a.cert_len = 10;
	a.ca_len = 10;
	ck_assert_int_eq(keys_message_format(&a, buf, 20), -1);
	a.verb = KEYS_VERB_NONE;
	ck_assert_int_eq(keys_message_format(&a, buf, sizeof(buf)), -1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("message");
	TCase *tc = tcase_create("message");

	tcase_add_test(tc, join_round_trip);
	tcase_add_test(tc, answers_round_trip);
	tcase_add_test(tc, hostile_input_is_refused);
	tcase_add_test(tc, crl_request_and_answer);
	tcase_add_test(tc, format_refuses_what_parse_would);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
