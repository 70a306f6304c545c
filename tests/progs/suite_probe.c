/*
 * suite_probe DIR HOST PORT SUITES: a TLS 1.3 client (wolfSSL) with the
 * node credentials in DIR that offers only SUITES (a wolfSSL cipher list)
 * and tlshim's ALPN, so that a refusal can only be about the suite.
 * Prints "ok SUITE" and exits 0 when the handshake completes, else
 * "refused ..." and exits 1.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

int
main(int argc, char **argv)
{
	char path[4096], alpn[] = "tlshim/1-chacha";
	struct sockaddr_in sin = { .sin_family = AF_INET };
	WOLFSSL_CTX *ctx;
	WOLFSSL *ssl;
	int fd, rc;

	if (argc != 5) {
		fprintf(stderr, "usage: suite_probe DIR HOST PORT SUITES\n");
		return 2;
	}
	wolfSSL_Init();
	ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
	snprintf(path, sizeof(path), "%s/ca.crt", argv[1]);
	if (ctx == NULL || wolfSSL_CTX_load_verify_locations(ctx, path, NULL) !=
	    WOLFSSL_SUCCESS)
		return 2;
	snprintf(path, sizeof(path), "%s/node.crt", argv[1]);
	if (wolfSSL_CTX_use_certificate_file(ctx, path, WOLFSSL_FILETYPE_PEM) !=
	    WOLFSSL_SUCCESS)
		return 2;
	snprintf(path, sizeof(path), "%s/node.key", argv[1]);
	if (wolfSSL_CTX_use_PrivateKey_file(ctx, path, WOLFSSL_FILETYPE_PEM) !=
	    WOLFSSL_SUCCESS)
		return 2;
	if (wolfSSL_CTX_set_cipher_list(ctx, argv[4]) != WOLFSSL_SUCCESS) {
		printf("unknown suite %s in this wolfSSL\n", argv[4]);
		return 3;
	}
	sin.sin_port = htons((unsigned short)atoi(argv[3]));
	if (inet_pton(AF_INET, argv[2], &sin.sin_addr) != 1 ||
	    (fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		perror("connect");
		return 2;
	}
	ssl = wolfSSL_new(ctx);
	wolfSSL_set_fd(ssl, fd);
	wolfSSL_UseALPN(ssl, alpn, sizeof(alpn) - 1,
	    WOLFSSL_ALPN_FAILED_ON_MISMATCH);
	rc = wolfSSL_connect(ssl);
	if (rc == WOLFSSL_SUCCESS) {
		printf("ok %s\n", wolfSSL_get_cipher_name(ssl));
		return 0;
	}
	printf("refused (%d)\n", wolfSSL_get_error(ssl, rc));
	return 1;
}
