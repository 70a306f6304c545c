"""A plain web service that is not part of the job (an object store, a
tracking server): serves DIR over HTTP, or HTTPS with --tls CERT KEY.

  webserve.py ADDR PORT DIR [--tls CERT KEY]
  webserve.py fetch URL [CAFILE]      print the SHA-256 of the body
"""
import functools
import hashlib
import http.server
import ssl
import sys
import urllib.request


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(addr, port, directory, tls):
    handler = functools.partial(QuietHandler, directory=directory)
    httpd = http.server.ThreadingHTTPServer((addr, int(port)), handler)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    httpd.serve_forever()


def fetch(url, cafile=None):
    ctx = ssl.create_default_context(cafile=cafile) if cafile else None
    with urllib.request.urlopen(url, timeout=10, context=ctx) as r:
        print(hashlib.sha256(r.read()).hexdigest())


if __name__ == "__main__":
    if sys.argv[1] == "fetch":
        fetch(*sys.argv[2:])
    else:
        tls = sys.argv[5:7] if len(sys.argv) > 4 and sys.argv[4] == "--tls" \
            else None
        serve(sys.argv[1], sys.argv[2], sys.argv[3], tls)
