"""Data parallelism with MPI (build/mpi, `make mpi`):
- loss math: dist_clip_loss on features split over ranks equals open_clip's own
  ClipLoss run with torch.distributed (gloo) on the same split, for every
  combination of local_loss and gather_with_grad (loss and feature gradients);
- equivalence: `mpirun -np 2` and `-np 4 --oversubscribe` training gives the
  per-step losses and final weights of one process with the same global batch,
  with --gather-with-grad, with and without --local-loss, and ZeRO-1 the same;
  a ViT (ViT-S-32) on 2 ranks the same;
- distributed embedding writes the single-process matrix in input order;
- a rank killed mid-run stops the job quickly with a message, and the last
  checkpoint resumes.
Tolerances (fp32, different summation orders across ranks): losses 1e-5
relative per step (measured <= 1e-6); final weights 1e-5 of each tensor's
largest magnitude plus 5e-3 x lr x steps absolute, i.e. within 0.5% of the
largest distance AdamW can move a weight in that many steps (measured worst
1.8e-5 = 0.2%). The absolute part exists because AdamW divides each gradient by
sqrt(v) + eps: where a gradient is tiny, its ~1e-7 relative rounding
differences across summation orders become visible in the update. The extreme
case is the attention key bias, whose true gradient is exactly zero (softmax
ignores a constant added to a whole row of scores): its gradient is rounding
noise, which AdamW turns into small updates that differ from run to run —
PyTorch does the same."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

MPIRUN = shutil.which("mpirun")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_btl="self,tcp",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")

from vtpaths import need  # noqa: E402


@pytest.fixture(autouse=True)
def _mpirun_present():
    need(MPIRUN is not None, "Open MPI is not installed (scripts/setup.sh installs it)")


@pytest.fixture(scope="module")
def mpi_build(build_dir):
    exe = build_dir / "mpi" / "vitamin"
    assert exe.exists(), f"{exe} missing: run `make mpi`"
    return build_dir / "mpi"


def mpirun(n, *cmd, check=True, timeout=300):
    p = subprocess.run([MPIRUN, "-np", str(n), "--oversubscribe", *map(str, cmd)], capture_output=True, text=True,
                       env=ENV, timeout=timeout)
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


# ------------------------------------------------------------------ loss math

def _torch_rank(rank, world, init, img, txt, scale, local_loss, gather_with_grad, out):
    import torch
    import torch.distributed as dist
    import open_clip

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    n = img.shape[0] // world
    li = torch.tensor(img[rank * n:(rank + 1) * n], dtype=torch.float64, requires_grad=True)
    lt = torch.tensor(txt[rank * n:(rank + 1) * n], dtype=torch.float64, requires_grad=True)
    s = torch.tensor(float(np.exp(scale)), dtype=torch.float64, requires_grad=True)
    loss_fn = open_clip.ClipLoss(local_loss=local_loss, gather_with_grad=gather_with_grad, rank=rank,
                                 world_size=world)
    ni, nt = torch.nn.functional.normalize(li, dim=-1), torch.nn.functional.normalize(lt, dim=-1)
    loss = loss_fn(ni, nt, s)
    loss.backward()
    np.savez(out, loss=loss.item(), d_image=li.grad.numpy(), d_text=lt.grad.numpy(),
             d_log_scale=(s.grad * s).item())
    dist.destroy_process_group()


@pytest.mark.parametrize("local_loss", [0, 1])
@pytest.mark.parametrize("gather_with_grad", [0, 1])
def test_loss_math_matches_open_clip_cliploss(mpi_build, tmp_path, local_loss, gather_with_grad):
    import torch.multiprocessing as mp

    world, n, e = 3, 4, 8
    rng = np.random.default_rng(local_loss * 2 + gather_with_grad)
    img = rng.standard_normal((world * n, e)).astype(np.float32)
    txt = (0.5 * img + rng.standard_normal((world * n, e))).astype(np.float32)
    scale = 2.3
    np.save(tmp_path / "img.npy", img)
    np.save(tmp_path / "txt.npy", txt)
    mpirun(world, mpi_build / "testtools" / "dist_loss_check", tmp_path / "img.npy", tmp_path / "txt.npy", scale,
           local_loss, gather_with_grad, tmp_path)
    init = f"file://{tmp_path}/gloo_init"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_torch_rank, args=(r, world, init, img, txt, scale, bool(local_loss),
                                                    bool(gather_with_grad), str(tmp_path / f"ref{r}.npz")))
             for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    refs = [np.load(tmp_path / f"ref{r}.npz") for r in range(world)]
    got_di, got_dt = np.load(tmp_path / "d_image.npy"), np.load(tmp_path / "d_text.npy")
    got = np.load(tmp_path / "loss.npy").ravel()
    assert abs(got[0] - np.mean([r["loss"] for r in refs])) <= 1e-5 * abs(got[0])
    for r in range(world):
        sl = slice(r * n, (r + 1) * n)
        np.testing.assert_allclose(got_di[sl], refs[r]["d_image"], atol=1e-6, rtol=1e-4)
        np.testing.assert_allclose(got_dt[sl], refs[r]["d_text"], atol=1e-6, rtol=1e-4)
        np.testing.assert_allclose(got[1 + r], refs[r]["d_log_scale"], atol=1e-6, rtol=1e-4)


# ---------------------------------------------------------------- equivalence

@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from test_train_cli import dataset as make  # the same generated shapes set

    return make.__wrapped__(tmp_path_factory) if hasattr(make, "__wrapped__") else _shapes(tmp_path_factory)


def _shapes(tmp_path_factory):
    from PIL import Image

    d = tmp_path_factory.mktemp("mpi_shapes")
    (d / "img").mkdir()
    rng = np.random.default_rng(1)
    words = ["red", "green", "blue", "round", "square", "striped", "dotted", "plain"]
    with open(d / "train.csv", "w") as f:
        f.write("filepath\ttitle\n")
        for i in range(64):
            a = rng.integers(0, 255, size=(20 + i % 5, 24, 3), dtype=np.uint8)
            Image.fromarray(a).save(d / "img" / f"{i:03d}.png")
            f.write(f"img/{i:03d}.png\ta {words[i % 8]} {words[(i // 8) % 8]} thing\n")
    return d


def run_train(cmd_prefix, exe, data, out, batch, *extra, model="ViTamin-Tiny"):
    log = out / "log.jsonl"
    args = [exe, "train", "--model", model, "--train-data", data / "train.csv", "--batch-size", batch,
            "--steps", STEPS, "--lr", LR, "--warmup", 1, "--seed", 3, "--save-dir", out / "ckpt",
            "--log", log, "--threads", 1, "--workers", 1, *extra]
    if cmd_prefix:
        mpirun(cmd_prefix, *args)
    else:
        p = subprocess.run(list(map(str, args)), capture_output=True, text=True, env=ENV, timeout=300)
        assert p.returncode == 0, p.stderr
    losses = [json.loads(l)["loss"] for l in log.read_text().splitlines()]
    from safetensors.numpy import load_file

    ck = out / "ckpt" / (out / "ckpt" / "latest").read_text().strip()
    return losses, load_file(str(ck / "open_clip_model.safetensors"))


LR, STEPS = 2e-3, 4


def assert_same(a, b):
    la, wa = a
    lb, wb = b
    assert len(la) == len(lb)
    for s, (x, y) in enumerate(zip(la, lb)):
        assert abs(x - y) <= 1e-5 * abs(y), f"step {s + 1}: loss {x} vs {y}"
    for k in wb:
        tol = 1e-5 * np.abs(wb[k]).max() + 5e-3 * LR * STEPS
        err = np.abs(wa[k] - wb[k]).max()
        assert err <= tol, f"{k}: max diff {err:.3g} > {tol:.3g}"


@pytest.mark.parametrize("local_loss", [False, True])
def test_two_and_four_ranks_match_one_process(mpi_build, build_dir, tmp_path_factory, tmp_path, local_loss):
    data = _shapes(tmp_path_factory)
    flags = ["--gather-with-grad"] + (["--local-loss"] if local_loss else [])
    (tmp_path / "one").mkdir()
    single = run_train(None, build_dir / "vitamin", data, tmp_path / "one", 16, *flags)
    for ranks in (2, 4):
        out = tmp_path / f"np{ranks}"
        out.mkdir()
        assert_same(run_train(ranks, mpi_build / "vitamin", data, out, 16 // ranks, *flags), single)
    out = tmp_path / "zero1"
    out.mkdir()
    assert_same(run_train(2, mpi_build / "vitamin", data, out, 8, *flags, "--zero1"), single)


def test_vit_two_ranks_match_one_process(mpi_build, build_dir, tmp_path_factory, tmp_path):
    """The same equivalence for a ViT image tower (ViT-S-32, the smallest open_clip ViT config)."""
    data = _shapes(tmp_path_factory)
    (tmp_path / "one").mkdir()
    single = run_train(None, build_dir / "vitamin", data, tmp_path / "one", 8, "--gather-with-grad", model="ViT-S-32")
    (tmp_path / "np2").mkdir()
    assert_same(run_train(2, mpi_build / "vitamin", data, tmp_path / "np2", 4, "--gather-with-grad",
                          model="ViT-S-32"), single)


def test_convnext_two_ranks_match_one_process(mpi_build, build_dir, tmp_path_factory, tmp_path):
    """The same equivalence for a ConvNeXt image tower (ConvNeXt-Atto: timm's
    convnext_atto trunk, drop path 0.1 drawn per global sample): it has no
    BatchNorm, so ranks normalise nothing across samples and the runs agree
    as ViTamin's do."""
    data = _shapes(tmp_path_factory)
    (tmp_path / "one").mkdir()
    single = run_train(None, build_dir / "vitamin", data, tmp_path / "one", 8, "--gather-with-grad",
                       model="ConvNeXt-Atto")
    (tmp_path / "np2").mkdir()
    assert_same(run_train(2, mpi_build / "vitamin", data, tmp_path / "np2", 4, "--gather-with-grad",
                          model="ConvNeXt-Atto"), single)


def test_distributed_embed_matches_single_process(mpi_build, build_dir, tmp_path_factory, tmp_path):
    data = _shapes(tmp_path_factory)
    (tmp_path / "t").mkdir()
    run_train(None, build_dir / "vitamin", data, tmp_path / "t", 8)
    ck = tmp_path / "t" / "ckpt" / (tmp_path / "t" / "ckpt" / "latest").read_text().strip()
    images = sorted(str(p) for p in (data / "img").glob("*.png"))[:23]
    (tmp_path / "list.txt").write_text("\n".join(images) + "\n")
    one = subprocess.run([str(build_dir / "vitamin"), "embed", "-m", str(ck), "--images-from",
                          str(tmp_path / "list.txt"), "--text", "a red thing", "-o", str(tmp_path / "one.npy")],
                         capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    mpirun(3, mpi_build / "vitamin", "embed", "-m", ck, "--images-from", tmp_path / "list.txt", "--text",
           "a red thing", "-o", tmp_path / "three.npy")
    a, b = np.load(tmp_path / "one.npy"), np.load(tmp_path / "three.npy")
    assert a.shape == b.shape == (24, 96)
    assert np.abs(a - b).max() <= 1e-6


def test_killed_rank_stops_the_job_and_checkpoint_resumes(mpi_build, tmp_path_factory, tmp_path):
    data = _shapes(tmp_path_factory)
    save = tmp_path / "ckpt"
    args = [MPIRUN, "-np", "2", "--oversubscribe", str(mpi_build / "vitamin"), "train", "--model", "ViTamin-Tiny",
            "--train-data", str(data / "train.csv"), "--batch-size", "8", "--steps", "100000", "--lr", "1e-3",
            "--save-dir", str(save), "--save-every", "2", "--threads", "1", "--workers", "1"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (save / "latest").exists():
        time.sleep(0.1)
    assert (save / "latest").exists(), "no checkpoint appeared"
    # Kill one rank (not mpirun): the youngest vitamin process of this job.
    pids = subprocess.run(["pgrep", "-s", str(proc.pid), "-f", "vitamin train"], capture_output=True,
                          text=True).stdout.split()
    ranks = [int(p) for p in pids if int(p) != proc.pid]
    assert ranks, "no rank processes found"
    killed = time.time()
    os.kill(max(ranks), signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    assert time.time() - killed < 30, "the job did not stop promptly"
    assert proc.returncode != 0
    assert "signal" in out.lower() or "killed" in out.lower() or "exited" in out.lower(), out[-2000:]
    # The last checkpoint is complete and resumes.
    last = (save / "latest").read_text().strip()
    step = int(last.split("_")[1])
    p = mpirun(2, mpi_build / "vitamin", "train", "--model", "ViTamin-Tiny", "--train-data", data / "train.csv",
               "--batch-size", 8, "--steps", step + 2, "--lr", "1e-3", "--save-dir", save, "--save-every", 2,
               "--threads", 1, "--workers", 1, "--resume", "latest")
    assert "resumed from" in p.stdout + p.stderr


# ------------------------------------------------------ two hosts, real links

def _ip(*args, ns=None):
    cmd = ["ip"] + (["-n", ns] if ns else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True)


def _tx_bytes(ns, dev):
    # `ip netns exec` remounts /sys for the namespace, so this is the counter
    # of the device inside it (it is invisible from the root namespace).
    p = subprocess.run(["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{dev}/statistics/tx_bytes"],
                       capture_output=True, text=True, check=True)
    return int(p.stdout)


def test_two_hosts_over_veth(mpi_build, build_dir, tmp_path_factory, tmp_path, monkeypatch):
    """Ranks on two "hosts" (network namespaces joined by a veth pair) that can
    reach each other only over TCP on that link, as on a real cluster: no
    shared-memory transport, no loopback between ranks, and mpirun starting the
    second daemon through an rsh agent (tests/tools/netns_rsh.sh in place of
    ssh). The training must equal the single-process run."""
    need(shutil.which("ip") is not None, "iproute2 (`ip`) is not installed")
    # Names are per process (netns names are global to the machine; a device
    # name has at most 15 characters), so concurrent runs do not collide.
    tag = f"vt{os.getpid() % 100000}"
    ns_a, ns_b, dev_a, dev_b = f"{tag}a", f"{tag}b", f"{tag}va", f"{tag}vb"
    net = f"10.77.{os.getpid() % 250}"
    addr_a, addr_b = f"{net}.1", f"{net}.2"
    p = _ip("netns", "add", ns_a)
    need(p.returncode == 0, f"cannot create network namespaces (needs root / CAP_NET_ADMIN): {p.stderr.strip()}")
    try:
        for step in (["netns", "add", ns_b],
                     ["link", "add", dev_a, "type", "veth", "peer", "name", dev_b],
                     ["link", "set", dev_a, "netns", ns_a],
                     ["link", "set", dev_b, "netns", ns_b]):
            p = _ip(*step)
            assert p.returncode == 0, f"ip {' '.join(step)}: {p.stderr}"
        for ns, dev, addr in ((ns_a, dev_a, addr_a), (ns_b, dev_b, addr_b)):
            for step in (["addr", "add", f"{addr}/24", "dev", dev], ["link", "set", dev, "up"],
                         ["link", "set", "lo", "up"]):
                p = _ip(*step, ns=ns)
                assert p.returncode == 0, f"ip -n {ns} {' '.join(step)}: {p.stderr}"
        hostfile = tmp_path / "hosts"
        hostfile.write_text(f"{addr_a} slots=1\n{addr_b} slots=1\n")
        agent = os.path.join(os.path.dirname(__file__), "tools", "netns_rsh.sh")
        launches = []

        def netns_mpirun(n, *cmd, check=True, timeout=120):
            # mpirun runs in namespace A, so the hostfile's first address is
            # local (rank 0 runs under mpirun's own daemon) and the second is
            # "remote": the agent starts its orted in namespace B, which must
            # connect back to mpirun over the veth (out-of-band channel), as
            # must the ranks (TCP BTL). --map-by node: one rank per "host".
            argv = ["ip", "netns", "exec", ns_a, MPIRUN, "-np", str(n), "--hostfile", str(hostfile),
                    "--map-by", "node", "--mca", "plm_rsh_agent", agent, "--mca", "btl", "tcp,self",
                    "--mca", "btl_tcp_if_include", f"{net}.0/24", "--mca", "oob_tcp_if_include", f"{net}.0/24",
                    "-x", "OMP_NUM_THREADS", "-x", "OMP_WAIT_POLICY", *map(str, cmd)]
            p = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=timeout)
            launches.append(p)
            if check:
                assert p.returncode == 0, p.stdout + p.stderr
            return p

        data = _shapes(tmp_path_factory)
        flags = ["--gather-with-grad", "--local-loss"]
        (tmp_path / "one").mkdir()
        single = run_train(None, build_dir / "vitamin", data, tmp_path / "one", 16, *flags)
        before = _tx_bytes(ns_a, dev_a), _tx_bytes(ns_b, dev_b)
        # run_train launches through this module's mpirun(): point it at the namespaces.
        monkeypatch.setattr(sys.modules[__name__], "mpirun", netns_mpirun)
        (tmp_path / "two").mkdir()
        two = run_train(2, mpi_build / "vitamin", data, tmp_path / "two", 8, *flags)
        after = _tx_bytes(ns_a, dev_a), _tx_bytes(ns_b, dev_b)
        assert len(launches) == 1
        assert_same(two, single)
        # Every step all-reduces the whole gradient, so each side must have
        # sent at least one gradient's worth over the veth (each rank sends
        # about half of it per all-reduce, STEPS times over).
        grad_bytes = 4 * sum(w.size for w in single[1].values())
        sent = after[0] - before[0], after[1] - before[1]
        assert min(sent) >= grad_bytes, f"veth tx bytes {sent} < one gradient ({grad_bytes} B): ranks did not talk over it"
    finally:
        # Deleting a namespace destroys the veth end inside it (and so the pair).
        for ns in (ns_a, ns_b):
            _ip("netns", "del", ns)
