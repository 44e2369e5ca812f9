/* Downloads from a Hugging Face hub endpoint into the cache, the way
 * huggingface_hub's file_download.py does it (HEAD for metadata without
 * following the redirect, GET from the redirect's location, blobs named by
 * etag, snapshot links, refs), with libcurl. */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/sha256.h"
#include "hub/hub.h"

enum { URL_MAX = 8192, MAX_REDIRECTS = 5 };

typedef struct {
    char endpoint[1024]; /* $HF_ENDPOINT without a trailing '/' */
    char auth[4200];     /* "Authorization: Bearer ..." or "" */
    int progress;
    int retries;         /* extra attempts after a dropped transfer */
} session;

/* What a HEAD of resolve/<rev>/<file> says. */
typedef struct {
    long status;
    char commit[64];
    char etag[200];       /* X-Linked-Etag (LFS sha256) or ETag (git blob sha1), quotes and W/ removed */
    long long size;       /* X-Linked-Size, else Content-Length of a 200; -1 unknown */
    char location[URL_MAX];
    char error_code[64];  /* X-Error-Code (EntryNotFound, RepoNotFound, GatedRepo, ...) */
    int linked_etag;
} head_info;

/* ------------------------------------------------------------- helpers */

static void trim(char *s) {
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    size_t i = 0;
    while (isspace((unsigned char)s[i])) i++;
    memmove(s, s + i, n - i + 1);
}

static void normalize_etag(const char *in, char *out, size_t size) {
    if (!strncmp(in, "W/", 2)) in += 2;
    size_t n = strlen(in);
    if (n >= 2 && in[0] == '"' && in[n - 1] == '"') in++, n -= 2;
    snprintf(out, size, "%.*s", (int)n, in);
}

static int valid_etag(const char *s) {
    if (!*s || strlen(s) > 128) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_') return 0;
    return 1;
}

static int is_sha256_hex(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!isxdigit((unsigned char)s[n])) return 0;
    return n == 64;
}

static size_t header_cb(char *buf, size_t size, size_t count, void *user) {
    head_info *h = user;
    size_t n = size * count;
    char line[URL_MAX + 64];
    snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), buf);
    if (!strncmp(line, "HTTP/", 5)) { /* a new response (after a redirect or 100): forget the last one */
        long keep = h->status;
        memset(h, 0, sizeof *h);
        h->status = keep;
        h->size = -1;
        return n;
    }
    char *colon = strchr(line, ':');
    if (!colon) return n;
    *colon = '\0';
    char *value = colon + 1;
    trim(line);
    trim(value);
    if (!strcasecmp(line, "X-Repo-Commit")) snprintf(h->commit, sizeof h->commit, "%s", value);
    else if (!strcasecmp(line, "X-Linked-Etag")) normalize_etag(value, h->etag, sizeof h->etag), h->linked_etag = 1;
    else if (!strcasecmp(line, "ETag") && !h->linked_etag) normalize_etag(value, h->etag, sizeof h->etag);
    else if (!strcasecmp(line, "X-Linked-Size")) h->size = atoll(value);
    else if (!strcasecmp(line, "Content-Length") && h->size < 0) h->size = -2 - atoll(value); /* provisional */
    else if (!strcasecmp(line, "Location")) snprintf(h->location, sizeof h->location, "%s", value);
    else if (!strcasecmp(line, "X-Error-Code")) snprintf(h->error_code, sizeof h->error_code, "%s", value);
    return n;
}

static size_t discard_cb(char *buf, size_t size, size_t count, void *user) { return size * count; }

static struct curl_slist *request_headers(const session *s, int with_auth) {
    struct curl_slist *list = curl_slist_append(NULL, "Accept-Encoding: identity");
    if (with_auth && s->auth[0]) list = curl_slist_append(list, s->auth);
    return list;
}

/* Authorization goes to the endpoint only, never to a CDN it redirects to
 * (huggingface_hub drops it there too). */
static int same_host(const session *s, const char *url) {
    size_t n = strlen(s->endpoint);
    return !strncmp(url, s->endpoint, n) && (url[n] == '/' || url[n] == '\0');
}

static vt_status network_error(const char *url, CURLcode code, vt_error *err) {
    return vt_fail(err, VT_ERR_IO,
                   "cannot download %s: %s. Check the network (and HF_ENDPOINT); to use a copy you already have, pass "
                   "-m PATH; to stay offline, set HF_HUB_OFFLINE=1", url, curl_easy_strerror(code));
}

static CURL *new_handle(const char *url) {
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "vitamin.c/1 (libcurl)");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    /* A stalled transfer (under 1 byte/s for 60 s) counts as dropped and resumes. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    return c;
}

/* HEAD resolve/<rev>/<file>, following only relative redirects (a renamed
 * repo), as huggingface_hub does; an absolute Location is where to download. */
static vt_status head(const session *s, const hub_spec *spec, const char *file, head_info *h, char *url,
                      vt_error *err) {
    char rev[512];
    size_t k = 0;
    for (const char *p = spec->revision; *p && k + 4 < sizeof rev; p++) { /* "refs/pr/1" -> "refs%2Fpr%2F1" */
        if (*p == '/') k += (size_t)snprintf(rev + k, sizeof rev - k, "%%2F");
        else rev[k++] = *p;
    }
    rev[k] = '\0';
    snprintf(url, URL_MAX, "%s/%s/resolve/%s/%s", s->endpoint, spec->repo, rev, file);
    for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
        CURL *c = new_handle(url);
        if (!c) return vt_fail(err, VT_ERR_NOMEM, "out of memory starting a download");
        memset(h, 0, sizeof *h);
        h->size = -1;
        struct curl_slist *headers = request_headers(s, same_host(s, url));
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_cb);
        CURLcode rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h->status);
        curl_easy_cleanup(c);
        curl_slist_free_all(headers);
        if (rc != CURLE_OK) return network_error(url, rc, err);
        if (h->size < -1) h->size = h->status == 200 ? -2 - h->size : -1;
        if (h->status >= 300 && h->status < 400 && h->location[0] == '/') {
            char next[URL_MAX];
            snprintf(next, sizeof next, "%.1000s%.7000s", s->endpoint, h->location);
            snprintf(url, URL_MAX, "%s", next);
            continue;
        }
        return VT_OK;
    }
    return vt_fail(err, VT_ERR_IO, "%s: more than %d redirects", url, MAX_REDIRECTS);
}

/* ----------------------------------------------------------- transfers */

typedef struct {
    FILE *file;
    long long offset;      /* bytes in the file when this request started */
    long long expected;    /* total size, -1 unknown */
    int checked;           /* response status looked at */
    int refused;           /* status >= 400, or 200 answering a Range request was handled */
    long status;
    CURL *curl;
    const session *s;
    const char *label;
    double started, last_print;
    long long written;
} transfer;

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void format_bytes(double b, char *out, size_t size) {
    if (b >= 1e9) snprintf(out, size, "%.2f GB", b / 1e9);
    else if (b >= 1e6) snprintf(out, size, "%.1f MB", b / 1e6);
    else snprintf(out, size, "%.0f kB", b / 1e3);
}

static void print_progress(transfer *t, int final) {
    double now = now_seconds();
    if (!t->s->progress || (!final && now - t->last_print < 0.2)) return;
    t->last_print = now;
    long long have = t->offset + t->written;
    double rate = t->written / (now - t->started + 1e-9);
    char got[32], total[32], speed[32], eta[32] = "";
    format_bytes((double)have, got, sizeof got);
    format_bytes(t->expected > 0 ? (double)t->expected : 0, total, sizeof total);
    format_bytes(rate, speed, sizeof speed);
    if (t->expected > 0 && rate > 0) {
        long left = (long)((t->expected - have) / rate);
        snprintf(eta, sizeof eta, "  ETA %ld:%02ld", left / 60, left % 60);
    }
    int pct = t->expected > 0 ? (int)(100.0 * have / t->expected) : 0;
    char bar[21];
    for (int i = 0; i < 20; i++) bar[i] = i < pct / 5 ? '#' : '.';
    bar[20] = '\0';
    fprintf(stderr, "\r%s [%s] %3d%%  %s / %s  %s/s%s   ", t->label, bar, pct, got, t->expected > 0 ? total : "?",
            speed, eta);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

static size_t write_cb(char *buf, size_t size, size_t count, void *user) {
    transfer *t = user;
    size_t n = size * count;
    if (!t->checked) {
        t->checked = 1;
        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->status);
        if (t->status >= 400) { t->refused = 1; return 0; }
        if (t->status == 200 && t->offset > 0) { /* the server ignored Range: start over */
            if (ftruncate(fileno(t->file), 0) || fseek(t->file, 0, SEEK_SET)) return 0;
            t->offset = 0;
        }
    }
    if (fwrite(buf, 1, n, t->file) != n) return 0;
    t->written += (long long)n;
    print_progress(t, 0);
    return n;
}

static long long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) ? -1 : (long long)st.st_size;
}

static vt_status sha256_of_file(const char *path, char hex[65], vt_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return vt_fail(err, VT_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    vt_sha256 h;
    vt_sha256_init(&h);
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    size_t n;
    while (buf && (n = fread(buf, 1, CHUNK, f)) > 0) vt_sha256_update(&h, buf, n);
    int failed = !buf || ferror(f);
    free(buf);
    fclose(f);
    if (failed) return vt_fail(err, VT_ERR_IO, "error reading %s", path);
    vt_sha256_final_hex(&h, hex);
    return VT_OK;
}

static int fsync_path(const char *path, int directory) {
    int fd = open(path, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int mkdirs(const char *path) {
    char buf[4608];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

/* GETs `url` into `incomplete`, resuming from what is there; retried on a
 * dropped connection. */
static vt_status fetch_blob(const session *s, const char *url, const char *label, long long expected,
                            const char *incomplete, vt_error *err) {
    for (int attempt = 0;; attempt++) {
        FILE *f = fopen(incomplete, "ab");
        if (!f) return vt_fail(err, VT_ERR_IO, "cannot write %s: %s", incomplete, strerror(errno));
        long long have = file_size(incomplete);
        if (expected >= 0 && have == expected) {
            fclose(f);
            return VT_OK;
        }
        if (expected >= 0 && have > expected) { /* not this file: start over */
            if (ftruncate(fileno(f), 0)) { fclose(f); return vt_fail(err, VT_ERR_IO, "cannot truncate %s", incomplete); }
            have = 0;
        }
        CURL *c = new_handle(url);
        if (!c) { fclose(f); return vt_fail(err, VT_ERR_NOMEM, "out of memory starting a download"); }
        struct curl_slist *headers = request_headers(s, same_host(s, url));
        transfer t = {.file = f, .offset = have, .expected = expected, .curl = c, .s = s, .label = label,
                      .started = now_seconds()};
        char range[64];
        snprintf(range, sizeof range, "%lld-", have);
        if (have > 0) curl_easy_setopt(c, CURLOPT_RANGE, range);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
        CURLcode rc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
        curl_slist_free_all(headers);
        int flushed = fflush(f) == 0 && fsync(fileno(f)) == 0;
        fclose(f);
        if (!flushed) return vt_fail(err, VT_ERR_IO, "cannot write %s: %s", incomplete, strerror(errno));
        if (status == 416) { /* nothing left to send: complete if sizes agree, else start over */
            if (expected < 0 || file_size(incomplete) == expected) return VT_OK;
            if (truncate(incomplete, 0)) return vt_fail(err, VT_ERR_IO, "cannot truncate %s", incomplete);
        } else if (t.refused || (rc == CURLE_OK && status >= 400)) {
            return vt_fail(err, VT_ERR_IO, "downloading %s: the server answered HTTP %ld", url, status);
        } else if (rc == CURLE_OK && (expected < 0 || file_size(incomplete) == expected)) {
            print_progress(&t, 1);
            return VT_OK;
        } else if (rc == CURLE_WRITE_ERROR) {
            return vt_fail(err, VT_ERR_IO, "cannot write %s (disk full?)", incomplete);
        }
        print_progress(&t, 1);
        if (attempt >= s->retries) {
            if (rc != CURLE_OK) network_error(url, rc, err);
            else vt_fail(err, VT_ERR_IO, "downloading %s: got %lld of %lld bytes", url, file_size(incomplete), expected);
            vt_error_prefix(err, "%s stays in the cache for the next try to resume from: ", incomplete);
            return err ? err->status : VT_ERR_IO;
        }
        if (s->progress) fprintf(stderr, "%s: connection dropped at %lld bytes, resuming\n", label, file_size(incomplete));
        struct timespec pause = {0, 200000000L * (attempt + 1)};
        nanosleep(&pause, NULL);
    }
}

/* Writes refs/<revision> = commit atomically. */
static vt_status write_ref(const char *repo_dir, const char *revision, const char *commit, vt_error *err) {
    char path[4608];
    snprintf(path, sizeof path, "%.4300s/refs/%.250s", repo_dir, revision);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    if (mkdirs(path)) return vt_fail(err, VT_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    *slash = '/';
    return atomic_file_write_all(path, commit, strlen(commit), 1, err);
}

/* snapshots/<commit>/<file> -> ../../blobs/<etag>, replacing an old link atomically. */
static vt_status link_snapshot(const char *repo_dir, const char *commit, const char *file, const char *etag,
                               vt_error *err) {
    char dir[4608], link_path[4700], tmp[4800], target[512];
    snprintf(dir, sizeof dir, "%s/snapshots/%s", repo_dir, commit);
    if (mkdirs(dir)) return vt_fail(err, VT_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    snprintf(link_path, sizeof link_path, "%s/%s", dir, file);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", link_path, (long)getpid());
    snprintf(target, sizeof target, "../../blobs/%s", etag);
    unlink(tmp);
    if (symlink(target, tmp) || rename(tmp, link_path)) {
        unlink(tmp);
        return vt_fail(err, VT_ERR_IO, "cannot create the link %s: %s", link_path, strerror(errno));
    }
    return VT_OK;
}

/* One file: 1 fetched (or already there), 0 absent on the hub (404). */
static vt_status fetch_file(const session *s, const char *repo_dir, const hub_spec *spec, const char *file,
                            char commit[41], int *present, vt_error *err) {
    *present = 0;
    head_info h;
    char url[URL_MAX];
    vt_status st = head(s, spec, file, &h, url, err);
    if (st) return st;
    if (h.status == 401 || h.status == 403)
        return vt_fail(err, VT_ERR_IO,
                       "%s: HTTP %ld (%s) for %s: %s", spec->repo, h.status, h.error_code[0] ? h.error_code : "unauthorized", url,
                       s->auth[0] ? "the token in HF_TOKEN was refused; check that it has access to this repo (a gated "
                                    "repo needs its terms accepted on the repo's page)"
                                  : "the repo is private, gated or does not exist; set HF_TOKEN to an access token "
                                    "that can read it");
    if (h.status == 404) {
        if (!h.error_code[0] && !h.commit[0])
            return vt_fail(err, VT_ERR_IO,
                           "HTTP 404 for %s with neither X-Error-Code nor X-Repo-Commit: HF_ENDPOINT (%s) does not "
                           "seem to be a Hugging Face hub endpoint", url, s->endpoint);
        if (!strcasecmp(h.error_code, "RepoNotFound") || !strcasecmp(h.error_code, "RevisionNotFound"))
            return vt_fail(err, VT_ERR_IO, "%s: %s (HTTP 404 for %s); check the repo id and revision", spec->repo,
                           h.error_code, url);
        return VT_OK;
    }
    if (h.status != 200 && !(h.status >= 300 && h.status < 400 && h.location[0]))
        return vt_fail(err, VT_ERR_IO, "%s: HTTP %ld for %s", spec->repo, h.status, url);
    if (!hub_is_commit(h.commit))
        return vt_fail(err, VT_ERR_FORMAT,
                       "%s: the response has no X-Repo-Commit header: HF_ENDPOINT does not seem to be a Hugging Face "
                       "hub endpoint", url);
    if (!valid_etag(h.etag))
        return vt_fail(err, VT_ERR_FORMAT, "%s: the response has no usable ETag, so the file cannot be cached", url);
    snprintf(commit, 41, "%.40s", h.commit);
    char blob_dir[4608], blob[4800], incomplete[4900], label[300];
    snprintf(blob_dir, sizeof blob_dir, "%s/blobs", repo_dir);
    if (mkdirs(blob_dir)) return vt_fail(err, VT_ERR_IO, "cannot create %s: %s", blob_dir, strerror(errno));
    snprintf(blob, sizeof blob, "%.4600s/%.128s", blob_dir, h.etag);
    snprintf(incomplete, sizeof incomplete, "%s.incomplete", blob);
    snprintf(label, sizeof label, "%s", file);
    /* huggingface_hub's lock (filelock = flock on <cache>/.locks/<repo folder>/<etag>.lock): two downloads of
     * one blob, ours or theirs, take turns instead of appending to one .incomplete file. */
    char lock_dir[4608], lock_path[4800];
    const char *base = strrchr(repo_dir, '/');
    snprintf(lock_dir, sizeof lock_dir, "%.*s/.locks/%s", (int)(base - repo_dir), repo_dir, base + 1);
    if (mkdirs(lock_dir)) return vt_fail(err, VT_ERR_IO, "cannot create %s: %s", lock_dir, strerror(errno));
    snprintf(lock_path, sizeof lock_path, "%.4600s/%.128s.lock", lock_dir, h.etag);
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock < 0 || flock(lock, LOCK_EX)) {
        if (lock >= 0) close(lock);
        return vt_fail(err, VT_ERR_IO, "cannot lock %s: %s", lock_path, strerror(errno));
    }
    long long have = file_size(blob);
    if (have < 0 || (h.size >= 0 && have != h.size)) {
        const char *from = h.status == 200 ? url : h.location;
        st = fetch_blob(s, from, label, h.size, incomplete, err);
        if (!st && h.linked_etag && is_sha256_hex(h.etag)) {
            char hex[65];
            st = sha256_of_file(incomplete, hex, err);
            if (!st && strcasecmp(hex, h.etag)) {
                unlink(incomplete);
                st = vt_fail(err, VT_ERR_FORMAT,
                             "%s: the downloaded file's sha256 is %s, but the hub says %s: the transfer was "
                             "corrupted. Nothing was written to the cache; run the command again", file, hex, h.etag);
            }
        }
        if (!st && rename(incomplete, blob))
            st = vt_fail(err, VT_ERR_IO, "cannot move %s into place: %s", blob, strerror(errno));
        if (!st) fsync_path(blob_dir, 1);
    }
    close(lock); /* releases the flock */
    if (st) return st;
    st = link_snapshot(repo_dir, h.commit, file, h.etag, err);
    if (!st) *present = 1;
    return st;
}

static void read_token(char *auth, size_t size) {
    auth[0] = '\0';
    const char *env = getenv("HF_TOKEN");
    if (!env || !*env) env = getenv("HUGGING_FACE_HUB_TOKEN");
    char token[4096] = "";
    if (env && *env) {
        snprintf(token, sizeof token, "%s", env);
    } else {
        char path[4096];
        const char *p = getenv("HF_TOKEN_PATH"), *home = getenv("HF_HOME"), *user = getenv("HOME");
        if (p && *p) snprintf(path, sizeof path, "%s", p);
        else if (home && *home) snprintf(path, sizeof path, "%s/token", home);
        else snprintf(path, sizeof path, "%s/.cache/huggingface/token", user ? user : "");
        FILE *f = fopen(path, "rb");
        if (f) {
            size_t n = fread(token, 1, sizeof token - 1, f);
            token[n] = '\0';
            fclose(f);
        }
    }
    trim(token);
    for (char *c = token; *c; c++)
        if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e) return; /* not a header value: send none */
    if (token[0]) snprintf(auth, size, "Authorization: Bearer %s", token);
}

vt_status hub_download_repo(const char *cache, const hub_spec *spec, const vt_hub_options *options, char commit[41],
                            vt_error *err) {
    static int curl_ready = 0;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT)) return vt_fail(err, VT_ERR_IO, "libcurl failed to initialise");
        curl_ready = 1;
    }
    session s = {0};
    const char *endpoint = getenv("HF_ENDPOINT");
    snprintf(s.endpoint, sizeof s.endpoint, "%s", endpoint && *endpoint ? endpoint : "https://huggingface.co");
    for (size_t n = strlen(s.endpoint); n && s.endpoint[n - 1] == '/';) s.endpoint[--n] = '\0';
    read_token(s.auth, sizeof s.auth);
    s.progress = options && options->progress;
    const char *retries = getenv("VITAMIN_HUB_RETRIES");
    s.retries = retries && *retries ? atoi(retries) : 5;
    char repo_dir[4352];
    hub_repo_dir(cache, spec->repo, repo_dir, sizeof repo_dir);
    if (mkdirs(repo_dir)) return vt_fail(err, VT_ERR_IO, "cannot create %s: %s", repo_dir, strerror(errno));
    commit[0] = '\0';
    int present = 0;
    vt_status st = VT_OK;
    for (size_t i = 0; i < sizeof HUB_CONFIG_FILES / sizeof *HUB_CONFIG_FILES && !st; i++)
        st = fetch_file(&s, repo_dir, spec, HUB_CONFIG_FILES[i], commit, &present, err);
    for (size_t i = 0; i < sizeof HUB_WEIGHT_FILES / sizeof *HUB_WEIGHT_FILES && !st && !(present && i); i++) {
        present = 0;
        st = fetch_file(&s, repo_dir, spec, HUB_WEIGHT_FILES[i], commit, &present, err);
        if (present) break;
    }
    if (st) return st;
    if (!present)
        return vt_fail(err, VT_ERR_IO, "%s holds none of open_clip_model.safetensors, open_clip_pytorch_model.bin, "
                                       "model.safetensors, pytorch_model.bin at revision %s", spec->repo, spec->revision);
    if (!hub_is_commit(spec->revision)) st = write_ref(repo_dir, spec->revision, commit, err);
    return st;
}
