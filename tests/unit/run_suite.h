#ifndef TLSHIM_TEST_RUN_SUITE_H
#define TLSHIM_TEST_RUN_SUITE_H

/* What every unit test's main ends with: run the suite, exit 0 only when
 * every check passed. */

#include <check.h>

static inline int
run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

#endif
