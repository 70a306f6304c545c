#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "keys.h"
#include "message.h"

int
keys_fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("tlshim-keys: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

bool
keys_name_ok(const char *s)
{
	return keys_message_name_ok(s, strlen(s), 63);
}

int
keys_parse_days(const char *s, int *out)
{
	char *end;
	long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > 36500)
		return -1;
	*out = (int)v;
	return 0;
}

int
keys_parse_duration(const char *s, long *out)
{
	char *end;
	long v, unit = 1;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno)
		return -1;
	switch (*end) {
	case '\0': case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	default: return -1;
	}
	if (*end != '\0' && end[1] != '\0')
		return -1;
	if (v < 1 || v > 36500L * 86400 / unit)
		return -1;
	*out = v * unit;
	return 0;
}

int
keys_read_file(const char *path, bool is_private, uint8_t **buf, size_t *len)
{
	struct stat st;
	uint8_t *data;
	size_t have = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return keys_fail(KEYS_FILE, "cannot open %s: %s", path,
		    strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return keys_fail(KEYS_FILE, "%s is not a regular file", path);
	}
	if (is_private && (st.st_mode & 077)) {
		close(fd);
		return keys_fail(KEYS_FILE, "%s is readable by others (mode %03o); "
		    "run: chmod 600 %s", path, (unsigned)(st.st_mode & 0777), path);
	}
	if (st.st_size <= 0 || st.st_size > KEYS_FILE_MAX) {
		close(fd);
		return keys_fail(KEYS_FILE, "%s is empty or too large", path);
	}
	if ((data = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return keys_fail(KEYS_FILE, "out of memory");
	}
	while (have < (size_t)st.st_size) {
		ssize_t n = read(fd, data + have, (size_t)st.st_size - have);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			keys_free_secret(data, have);
			return keys_fail(KEYS_FILE, "cannot read %s", path);
		}
		have += (size_t)n;
	}
	close(fd);
	data[have] = '\0';
	*buf = data;
	*len = have;
	return KEYS_OK;
}

void
keys_free_secret(uint8_t *buf, size_t len)
{
	if (buf == NULL)
		return;
	sodium_memzero(buf, len);
	free(buf);
}

int
keys_mkdir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) == 0)
		return KEYS_OK;
	if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return KEYS_OK;
	return keys_fail(KEYS_FILE, "cannot create directory %s: %s", dir,
	    strerror(errno));
}

static int
write_all(int fd, const uint8_t *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int
keys_write_files(const char *dir, const char *const *names,
    const uint8_t *const *data, const size_t *lens, const int *modes,
    int count, bool force)
{
	char tmp[8][4096], final[4096];
	int i, made = 0, rc = KEYS_OK;

	if (count > 8)
		return keys_fail(KEYS_FILE, "too many files");
	for (i = 0; i < count; i++) {
		snprintf(final, sizeof(final), "%s/%s", dir, names[i]);
		if (!force && access(final, F_OK) == 0)
			return keys_fail(KEYS_EXISTS, "%s exists; refusing to "
			    "overwrite it (use --force to replace)", final);
	}
	for (i = 0; i < count; i++) {
		int fd;

		snprintf(tmp[i], sizeof(tmp[i]), "%s/.%s.%d.tmp", dir, names[i],
		    (int)getpid());
		fd = open(tmp[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, modes[i]);
		if (fd < 0) {
			rc = keys_fail(KEYS_FILE, "cannot create %s: %s", tmp[i],
			    strerror(errno));
			goto err;
		}
		made++;
		if (fchmod(fd, modes[i]) != 0 || write_all(fd, data[i], lens[i]) ||
		    fsync(fd) != 0) {
			rc = keys_fail(KEYS_FILE, "cannot write %s: %s", tmp[i],
			    strerror(errno));
			close(fd);
			goto err;
		}
		if (close(fd) != 0) {
			rc = keys_fail(KEYS_FILE, "cannot write %s: %s", tmp[i],
			    strerror(errno));
			goto err;
		}
	}
	for (i = 0; i < count; i++) {
		snprintf(final, sizeof(final), "%s/%s", dir, names[i]);
		if (rename(tmp[i], final) != 0) {
			rc = keys_fail(KEYS_FILE, "cannot rename %s to %s: %s",
			    tmp[i], final, strerror(errno));
			goto err;
		}
	}
	return KEYS_OK;
err:
	for (i = 0; i < made; i++)
		(void)unlink(tmp[i]);
	return rc;
}

int
keys_pem(const uint8_t *der, size_t derlen, int type, uint8_t *out,
    size_t *outlen)
{
	int n = wc_DerToPem(der, (word32)derlen, out, (word32)*outlen, type);

	if (n <= 0)
		return -1;
	*outlen = (size_t)n;
	return 0;
}

int
keys_ecc_new(WC_RNG *rng, ecc_key *key)
{
	int rc;

	if ((rc = wc_ecc_init(key)) != 0)
		return rc;
	return wc_ecc_make_key_ex(rng, 32, key, ECC_SECP256R1);
}

int
keys_ecc_from_pem(const uint8_t *pem, size_t len, ecc_key *key)
{
	uint8_t der[4096];
	word32 idx = 0;
	int n, rc;

	n = wc_KeyPemToDer(pem, (int)len, der, sizeof(der), NULL);
	if (n <= 0)
		return -1;
	if (wc_ecc_init(key) != 0)
		return -1;
	rc = wc_EccPrivateKeyDecode(der, &idx, key, (word32)n);
	sodium_memzero(der, sizeof(der));
	return rc == 0 ? 0 : -1;
}

/* A UTCTime (dates before 2050) as DER: tag, length, YYMMDDHHMMSSZ. */
static int
der_utctime(time_t t, uint8_t out[CTC_DATE_SIZE], int *len)
{
	struct tm tm;
	char text[16];

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 >= 2050)
		return -1;
	strftime(text, sizeof(text), "%y%m%d%H%M%SZ", &tm);
	out[0] = 0x17;
	out[1] = 13;
	memcpy(out + 2, text, 13);
	*len = 15;
	return 0;
}

/* A GeneralizedTime (2050 and later) as DER. */
static int
der_gentime(time_t t, uint8_t out[CTC_DATE_SIZE], int *len)
{
	struct tm tm;
	char text[20];

	if (gmtime_r(&t, &tm) == NULL)
		return -1;
	strftime(text, sizeof(text), "%Y%m%d%H%M%SZ", &tm);
	out[0] = 0x18;
	out[1] = 15;
	memcpy(out + 2, text, 15);
	*len = 17;
	return 0;
}

int
keys_set_validity(Cert *cert, long seconds)
{
	time_t now = time(NULL);
	time_t before = now - KEYS_BACKDATE_SECONDS;
	time_t after = now + (time_t)seconds;
	long days = seconds / 86400;

	if (der_utctime(before, cert->beforeDate, &cert->beforeDateSz) != 0)
		return -1;
	if (der_utctime(after, cert->afterDate, &cert->afterDateSz) != 0 &&
	    der_gentime(after, cert->afterDate, &cert->afterDateSz) != 0)
		return -1;
	cert->daysValid = days > 0 ? (int)days : 1;
	return 0;
}

int
keys_set_serial(Cert *cert, WC_RNG *rng)
{
	if (wc_RNG_GenerateBlock(rng, cert->serial, 16) != 0)
		return -1;
	cert->serial[0] &= 0x7f;	/* positive */
	cert->serial[0] |= 0x40;	/* no leading zero byte */
	cert->serialSz = 16;
	return 0;
}
