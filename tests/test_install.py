"""`make install PREFIX=...`: the CLI, libvitamin.a and the versioned
libvitamin.so (soname libvitamin.so.0), vitamin.h and vitamin.pc. A C program
built from the installed files with pkg-config alone, run from outside the
source tree with no environment, tokenizes exactly like open_clip (the
vocabulary is inside the library), linked shared and static."""
import os
import subprocess

import open_clip

from vtpaths import ROOT

PROGRAM = r'''
#include <stdio.h>
#include <vitamin.h>
int main(int argc, char **argv) {
    vt_tokenizer *tok; vt_error err = {0}; int ids[77];
    if (vt_tokenizer_load(NULL, &tok, &err) || vt_tokenize(tok, argv[1], 77, ids, &err)) {
        fprintf(stderr, "%s\n", err.message); return 1;
    }
    for (int i = 0; i < 77; i++) printf("%d ", ids[i]);
    vt_tokenizer_free(tok);
    return argc == 2 ? 0 : 1;
}
'''


def test_install_and_build_against_it(tmp_path):
    prefix = tmp_path / "prefix"
    proc = subprocess.run(["make", f"PREFIX={prefix}", "install"], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lib = prefix / "lib"
    assert os.readlink(lib / "libvitamin.so") == "libvitamin.so.0"
    soname = subprocess.run(["readelf", "-d", str(lib / "libvitamin.so.0")], capture_output=True, text=True).stdout
    assert "Library soname: [libvitamin.so.0]" in soname
    (tmp_path / "prog.c").write_text(PROGRAM)
    env = {"PATH": os.environ["PATH"], "PKG_CONFIG_PATH": str(lib / "pkgconfig")}
    text = "a photo of a cat, Ünïcödé 🙂"
    want = " ".join(str(int(i)) for i in open_clip.get_tokenizer("ViTamin-S")([text])[0])
    for link in ("shared", "static"):
        flags = subprocess.run(["pkg-config", "--cflags", "--libs"] + (["--static"] if link == "static" else [])
                               + ["vitamin"], env=env, capture_output=True, text=True, check=True).stdout.split()
        exe = tmp_path / f"prog_{link}"
        cmd = ["cc", "-std=c17", str(tmp_path / "prog.c"), "-o", str(exe)]
        cmd += ["-static-libgcc"] if link == "static" else []
        if link == "static":  # the archive, not the .so, plus its dependencies
            flags = [f for f in flags if f != "-lvitamin"] + [str(lib / "libvitamin.a")] + \
                subprocess.run(["pkg-config", "--libs", "--static", "vitamin"], env=env, capture_output=True,
                               text=True, check=True).stdout.split()
        proc = subprocess.run(cmd + flags, capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        run_env = {"PATH": os.environ["PATH"], "LD_LIBRARY_PATH": str(lib)}
        out = subprocess.run([str(exe), text], capture_output=True, text=True, cwd="/", env=run_env, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == want
    cli = subprocess.run([str(prefix / "bin" / "vitamin"), "tokenize", text], capture_output=True, text=True, cwd="/",
                         env={"PATH": os.environ["PATH"]}, timeout=60)
    assert cli.returncode == 0 and cli.stdout.strip() == want, cli.stderr
