"""A local stand-in for the Hugging Face hub's file endpoints, enough for
huggingface_hub and vitamin.c to download from: HEAD/GET
/<repo>/resolve/<rev>/<file> with X-Repo-Commit and ETag; large (LFS) files
answered with a 302 to a second server (another loopback address, the "CDN")
carrying X-Linked-Etag (the sha256) and X-Linked-Size; Range requests; 401 for
private repos without the right bearer token; 404 with X-Error-Code; a 307
relative redirect for a renamed repo. Failure knobs: drop the connection after
N bytes for the next K downloads, or serve corrupted bytes."""
import hashlib
import http.server
import threading
import urllib.parse

LFS_SUFFIXES = (".bin", ".safetensors", ".pt")


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Hub:
    def __init__(self):
        self.repos = {}       # repo id -> {"commit", "files": {name: bytes}, "token"}
        self.renamed = {}     # old repo id -> new repo id
        self.drop_after = None
        self.drops_left = 0
        self.corrupt = False
        self.ignore_range = False  # answer Range requests with the whole file (200), as some mirrors do
        self.requests = []    # (host, method, path, headers dict)
        self.lock = threading.Lock()
        self.servers = []

    def add_repo(self, repo, files, commit="0123456789abcdef0123456789abcdef01234567", token=None):
        self.repos[repo] = {"commit": commit, "files": dict(files), "token": token}

    def start(self):
        for host in ("127.0.0.1", "127.0.0.2"):
            srv = http.server.ThreadingHTTPServer((host, 0), self._handler(host))
            srv.daemon_threads = True
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            self.servers.append(srv)
        self.endpoint = "http://127.0.0.1:%d" % self.servers[0].server_address[1]
        self.cdn = "http://127.0.0.2:%d" % self.servers[1].server_address[1]
        return self

    def stop(self):
        for srv in self.servers:
            srv.shutdown()
            srv.server_close()

    def blob(self, sha):
        for r in self.repos.values():
            for data in r["files"].values():
                if hashlib.sha256(data).hexdigest() == sha:
                    return data
        return None

    def _handler(self, host):
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.respond(head=True)

            def do_GET(self):
                self.respond(head=False)

            def send(self, status, headers, body=b"", head=False):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head and body:
                    self.wfile.write(body)

            def respond(self, head):
                with hub.lock:
                    hub.requests.append((host, self.command, self.path, dict(self.headers)))
                path = urllib.parse.urlparse(self.path).path
                if path.startswith("/cdn/"):
                    return self.serve_blob(path[5:], head)
                parts = path.strip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    return self.send(404, {"X-Error-Code": "EntryNotFound"}, head=head)
                repo, rev, name = "/".join(parts[:2]), urllib.parse.unquote(parts[3]), "/".join(parts[4:])
                if repo in hub.renamed:
                    new = hub.renamed[repo]
                    return self.send(307, {"Location": "/%s/resolve/%s/%s" % (new, parts[3], name)}, head=head)
                r = hub.repos.get(repo)
                if r is None:
                    return self.send(401, {"X-Error-Code": "RepoNotFound"}, head=head)
                if r["token"] and self.headers.get("Authorization") != "Bearer " + r["token"]:
                    return self.send(401, {"X-Error-Code": "GatedRepo"}, head=head)
                if rev not in ("main", r["commit"]):
                    return self.send(404, {"X-Error-Code": "RevisionNotFound"}, head=head)
                data = r["files"].get(name)
                common = {"X-Repo-Commit": r["commit"]}
                if data is None:
                    return self.send(404, dict(common, **{"X-Error-Code": "EntryNotFound"}), head=head)
                if name.endswith(LFS_SUFFIXES):
                    sha = hashlib.sha256(data).hexdigest()
                    return self.send(302, dict(common, **{
                        "Location": "%s/cdn/%s?sig=x" % (hub.cdn, sha), "X-Linked-Etag": '"%s"' % sha,
                        "X-Linked-Size": str(len(data)), "ETag": '"%s"' % git_blob_sha1(b"lfs pointer " + sha.encode())}),
                        head=head)
                self.send(200, dict(common, **{"ETag": '"%s"' % git_blob_sha1(data)}), data, head)

            def serve_blob(self, sha, head):
                data = hub.blob(sha)
                if data is None:
                    return self.send(404, {}, head=head)
                if hub.corrupt:
                    data = bytes([data[0] ^ 1]) + data[1:]
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes=") and rng.endswith("-") and not hub.ignore_range:
                    start = int(rng[6:-1])
                    if start >= len(data):
                        return self.send(416, {"Content-Range": "bytes */%d" % len(data)}, head=head)
                body = data[start:]
                headers = {"Content-Length": str(len(body)), "Accept-Ranges": "bytes"}
                status = 200
                if start:
                    status = 206
                    headers["Content-Range"] = "bytes %d-%d/%d" % (start, len(data) - 1, len(data))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if head:
                    return
                with hub.lock:
                    drop = hub.drop_after if hub.drops_left > 0 else None
                    if drop is not None:
                        hub.drops_left -= 1
                if drop is not None:
                    self.wfile.write(body[:drop])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        return Handler
