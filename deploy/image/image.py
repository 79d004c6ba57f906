#!/usr/bin/env python3
"""Builds the agent image from pinned inputs (deploy/image/README.md).

    python3 deploy/image/image.py --out DIR --agent FILE --verify FILE [--cache DIR]

Writes DIR/{vmlinuz,initrd.img,cmdline,OVMF.fd,manifest.json,policy-snp.toml,
policy-tdx.toml} (the direct-boot payload) and DIR/{uki.efi,disk.raw,disk.tar.gz,disk.vhd,
policy-tdx-disk.toml} (the same payload as a disk that boots itself, disk.py). The same inputs give the same bytes: the initrd is a newc cpio written here (sorted entries, one fixed
mtime, uid/gid 0, fixed modes, sequential inode numbers) compressed with gzip without
a name or time stamp, and the manifest holds only values computed from the outputs
and the pinned inputs (no paths, no clock). Python's standard library only, so the
build needs no tool beyond apt, dpkg-deb and ldd of a Debian host.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
from pathlib import Path

import disk

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ARCH = "amd64"
SNAPSHOT = "https://snapshot.debian.org"
# vCPU counts and type the SEV-SNP measurements are computed for (QEMU/KVM hosts).
SNP_VCPUS = (1, 2, 4, 8)
SNP_VCPU_TYPE = "EPYC-v4"
# SEV_FEATURES: SNPActive (0x1) and SNPActive + DebugSwap (0x21, the Linux >= 6.6 KVM default).
SNP_GUEST_FEATURES = ("0x1", "0x21")


class BuildError(Exception):
    pass


def log(msg: str) -> None:
    print(f"image: {msg}", file=sys.stderr, flush=True)


def digests(data: bytes) -> dict:
    return {
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "sha384": hashlib.sha384(data).hexdigest(),
    }


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=False, text=True, capture_output=True, **kw)


# ---------------------------------------------------------------------------
# Fetching the pinned .debs


def deb_name(pkg: dict) -> str:
    # apt's own file name: the epoch's ':' escaped, arch from the download.
    return f"{pkg['name']}_{pkg['version'].replace(':', '%3a')}"


class Fetcher:
    """apt-get download through a private apt state directory under the cache."""

    def __init__(self, lock: dict, cache: Path):
        self.lock, self.cache = lock, cache
        self.debs = cache / "debs"
        self.debs.mkdir(parents=True, exist_ok=True)
        self.apt_dir = cache / "apt"
        self.updated = False

    def apt_opts(self) -> list:
        d = self.apt_dir
        return [
            f"-o=Dir::Etc::SourceList={d / 'sources.list'}",
            "-o=Dir::Etc::SourceParts=/nonexistent",
            f"-o=Dir::Etc::Trusted={self.lock['apt']['keyring']}",
            "-o=Dir::Etc::TrustedParts=/nonexistent",
            f"-o=Dir::State={d / 'state'}",
            "-o=Dir::State::status=/dev/null",
            f"-o=Dir::Cache={d / 'cache'}",
            "-o=APT::Sandbox::User=root",
            "-o=Acquire::Retries=3",
        ]

    def update(self) -> None:
        if self.updated:
            return
        for sub in ("state/lists/partial", "cache/archives/partial"):
            (self.apt_dir / sub).mkdir(parents=True, exist_ok=True)
        (self.apt_dir / "sources.list").write_text("\n".join(self.lock["apt"]["sources"]) + "\n")
        log("apt-get update (private state)")
        r = run(["apt-get", *self.apt_opts(), "-qq", "update"])
        if r.returncode != 0:
            raise BuildError(f"apt-get update failed: {r.stderr.strip()}")
        self.updated = True

    def cached(self, pkg: dict) -> Path | None:
        for p in sorted(self.debs.glob(deb_name(pkg) + "_*.deb")):
            if hashlib.sha256(p.read_bytes()).hexdigest() == pkg["sha256"]:
                return p
            log(f"{p.name}: cached copy has the wrong SHA-256, fetching again")
            p.unlink()
        return None

    def accept(self, tmp: Path, pkg: dict, origin: str) -> Path:
        got = hashlib.sha256(tmp.read_bytes()).hexdigest()
        if got != pkg["sha256"]:
            tmp.unlink()
            raise BuildError(
                f"{pkg['name']}={pkg['version']} from {origin}: SHA-256 {got}, "
                f"inputs.lock pins {pkg['sha256']}: refused"
            )
        dest = self.debs / tmp.name
        shutil.move(str(tmp), dest)
        return dest

    def fetch(self, pkg: dict) -> Path:
        hit = self.cached(pkg)
        if hit:
            return hit
        self.update()
        with tempfile.TemporaryDirectory(dir=self.cache) as t:
            r = run(
                ["apt-get", *self.apt_opts(), "-qq", "download", f"{pkg['name']}={pkg['version']}"],
                cwd=t,
            )
            got = sorted(Path(t).glob(deb_name(pkg) + "_*.deb"))
            if r.returncode == 0 and got:
                log(f"fetched {got[0].name} (apt)")
                return self.accept(got[0], pkg, "the archive")
            log(
                f"{pkg['name']}={pkg['version']} is not in the archives any more "
                f"({r.stderr.strip() or 'no file'}): trying snapshot.debian.org"
            )
            return self.accept(self.snapshot(pkg, Path(t)), pkg, "snapshot.debian.org")

    def snapshot(self, pkg: dict, into: Path) -> Path:
        try:
            return self._snapshot(pkg, into)
        except (OSError, ValueError, KeyError) as e:  # URLError is an OSError
            raise BuildError(f"{pkg['name']}={pkg['version']} from snapshot.debian.org: {e}") from e

    def _snapshot(self, pkg: dict, into: Path) -> Path:
        url = f"{SNAPSHOT}/mr/binary/{pkg['name']}/{pkg['version']}/binfiles?fileinfo=1"
        with urllib.request.urlopen(url, timeout=60) as f:
            info = json.load(f)
        for res in info.get("result", []):
            if res.get("architecture") not in (ARCH, "all"):
                continue
            for fi in info.get("fileinfo", {}).get(res["hash"], []):
                name = fi["name"]
                dest = into / name.replace(":", "%3a")
                with urllib.request.urlopen(f"{SNAPSHOT}/file/{res['hash']}", timeout=300) as f:
                    dest.write_bytes(f.read())
                log(f"fetched {name} (snapshot.debian.org)")
                return dest
        raise BuildError(f"{pkg['name']}={pkg['version']}: not found on snapshot.debian.org")


def extract(deb: Path, into: Path) -> Path:
    into.mkdir(parents=True)
    r = run(["dpkg-deb", "-x", str(deb), str(into)])
    if r.returncode != 0:
        raise BuildError(f"dpkg-deb -x {deb.name}: {r.stderr.strip()}")
    return into


# ---------------------------------------------------------------------------
# The initrd


class Tree:
    """The initrd's files: path (no leading '/') -> (kind, mode, data or target, rdev)."""

    def __init__(self):
        self.entries: dict[str, tuple] = {}

    def _parents(self, path: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            kind = self.entries.get(d, ("dir",))[0]
            if kind != "dir":
                raise BuildError(f"initrd: {d} is not a directory")
            self.entries.setdefault(d, ("dir", 0o755, b"", (0, 0)))

    def add(self, path: str, kind: str, mode: int, data: bytes = b"", rdev=(0, 0)) -> None:
        path = path.strip("/")
        if path in self.entries and self.entries[path][0] != "dir":
            raise BuildError(f"initrd: {path} added twice")
        self._parents(path)
        self.entries[path] = (kind, mode, data, rdev)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.add(path, "file", mode, data)

    def dir(self, path: str, mode: int = 0o755) -> None:
        self.add(path, "dir", mode)

    def symlink(self, path: str, target: str) -> None:
        self.add(path, "link", 0o777, target.encode())

    def chardev(self, path: str, mode: int, major: int, minor: int) -> None:
        self.add(path, "chr", mode, b"", (major, minor))

    def cpio(self, mtime: int) -> bytes:
        """newc: sorted paths, sequential inodes from 1, uid/gid 0, one mtime."""
        kinds = {"file": 0o100000, "dir": 0o040000, "link": 0o120000, "chr": 0o020000}
        out = bytearray()

        def entry(name: str, ino: int, mode: int, nlink: int, data: bytes, rdev) -> None:
            nb = name.encode() + b"\0"
            fields = (ino, mode, 0, 0, nlink, mtime, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0)
            out.extend(b"070701" + b"".join(b"%08X" % f for f in fields) + nb)
            out.extend(b"\0" * (-len(out) % 4))
            out.extend(data)
            out.extend(b"\0" * (-len(out) % 4))

        for ino, path in enumerate(sorted(self.entries), start=1):
            kind, mode, data, rdev = self.entries[path]
            entry(path, ino, kinds[kind] | mode, 2 if kind == "dir" else 1, data, rdev)
        entry("TRAILER!!!", 0, 0, 1, b"", (0, 0))
        out.extend(b"\0" * (-len(out) % 512))
        return bytes(out)


def modinfo(ko: bytes) -> dict:
    """name= and depends= from the module's .modinfo strings."""
    info = {}
    for key in (b"name", b"depends"):
        m = re.search(rb"(?:^|\0)" + key + rb"=([^\0]*)\0", ko)
        info[key.decode()] = m.group(1).decode() if m else ""
    return info


def module_dir(kroot: Path, kver: str) -> Path:
    """The kernel's module tree: /usr/lib/modules (Debian 13's packages) or /lib/modules."""
    for d in ("usr/lib/modules", "lib/modules"):
        if (kroot / d / kver).is_dir():
            return kroot / d / kver
    raise BuildError(f"the kernel packages have no module tree for {kver}")


def find_kernel(kroot: Path) -> tuple:
    """(vmlinuz, kernel release, config) of the extracted kernel packages: Debian 13
    keeps them in /usr/lib/modules/<release>/, Debian 12 in /boot."""
    found = [(p, p.parent.name, p.parent / "config") for p in sorted(kroot.glob("usr/lib/modules/*/vmlinuz"))]
    found += [(p, p.name.removeprefix("vmlinuz-"), kroot / "boot" / ("config-" + p.name.removeprefix("vmlinuz-")))
              for p in sorted(kroot.glob("boot/vmlinuz-*"))]
    if len(found) != 1:
        raise BuildError(f"the kernel packages must hold exactly one vmlinuz, not {len(found)}")
    vmlinuz, kver, config = found[0]
    if not config.is_file():
        raise BuildError(f"the kernel packages have no configuration for {kver}")
    return vmlinuz, kver, config


def kernel_modules(tree: Tree, kroot: Path, kver: str, wanted: list) -> list:
    """Decompressed modules in the lock's order, which must put dependencies first."""
    loaded, order = set(), []
    for rel in wanted:
        src = module_dir(kroot, kver) / rel
        if not src.is_file():
            raise BuildError(f"kernel package has no {rel}")
        data = lzma.decompress(src.read_bytes()) if rel.endswith(".xz") else src.read_bytes()
        info = modinfo(data)
        missing = [d for d in info["depends"].split(",") if d and d not in loaded]
        if missing:
            raise BuildError(f"{rel} depends on {missing}: list them before it in inputs.lock")
        loaded.add(info["name"])
        dest = f"lib/modules/{kver}/{rel.removesuffix('.xz')}"
        tree.file(dest, data)
        order.append({"name": info["name"], "path": "/" + dest, "sha256": hashlib.sha256(data).hexdigest()})
    return order


LIB_DIRS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "lib", "usr/lib")


def resolve_in(root: Path, rel: str) -> Path | None:
    """A path inside an extracted package, following its symlinks within the root."""
    p = root / rel
    for _ in range(16):
        if p.is_symlink():
            t = os.readlink(p)
            p = (root / t.lstrip("/")) if t.startswith("/") else (p.parent / t)
            continue
        return p if p.is_file() else None
    return None


def host_package(path: str) -> dict | None:
    """The build host's package (and version) owning a library the agent was linked against."""
    for cand in (path, "/usr" + path if not path.startswith("/usr/") else path.removeprefix("/usr")):
        r = run(["dpkg-query", "-S", cand])
        if r.returncode == 0:
            name = r.stdout.split(":")[0].strip()
            v = run(["dpkg-query", "-W", "-f=${Version}", name])
            return {"package": name, "version": v.stdout.strip()}
    return None


def agent_libraries(tree: Tree, agent: Path, roots: dict, pkgs: dict) -> list:
    """The agent's shared-library closure (ldd), each taken from a pinned package."""
    r = run(["ldd", str(agent)])
    if r.returncode != 0:
        raise BuildError(f"ldd {agent.name}: {r.stderr.strip() or r.stdout.strip()}")
    libs = []
    for line in r.stdout.splitlines():
        line = line.strip()
        if line.startswith("linux-vdso") or not line:
            continue
        m = re.match(r"(\S+)(?: => (\S+))? \(0x[0-9a-f]+\)$", line)
        if not m:
            raise BuildError(f"ldd: cannot read {line!r}")
        soname, host = m.group(1), m.group(2) or m.group(1)
        interp = soname.startswith("/")
        base = Path(soname).name
        found = None
        for pkg, root in roots.items():
            for d in LIB_DIRS:
                f = resolve_in(root, f"{d}/{base}")
                if f:
                    found = (pkg, f)
                    break
            if found:
                break
        if not found:
            raise BuildError(f"the agent needs {base} ({host}), which no pinned package ships")
        linked = host_package(host)
        pinned = pkgs[found[0]]["version"]
        if linked and linked["package"] == found[0] and run(
            ["dpkg", "--compare-versions", linked["version"], "gt", pinned]
        ).returncode == 0:
            raise BuildError(
                f"the agent was linked against {found[0]} {linked['version']}, newer than the "
                f"pinned {pinned}: its symbol versions may be missing; pin at least that version"
            )
        data = found[1].read_bytes()
        dest = soname.lstrip("/") if interp else f"lib/x86_64-linux-gnu/{base}"
        tree.file(dest, data, 0o755)
        libs.append({
            "soname": base,
            "path": "/" + dest,
            "sha256": hashlib.sha256(data).hexdigest(),
            "package": found[0],
            "linked_against": linked,
        })
    return sorted(libs, key=lambda x: x["path"])


# ---------------------------------------------------------------------------
# Measurements (sigil-verify measure, sigil-agent measure), computed, never typed in


def tool_json(cmd: list, cwd: Path) -> tuple[int, dict]:
    r = run(cmd, cwd=cwd)
    if r.returncode not in (0, 1) or not r.stdout.strip():
        raise BuildError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.returncode, json.loads(r.stdout)


def tool_text(cmd: list, cwd: Path) -> str:
    r = run(cmd, cwd=cwd)
    if r.returncode != 0:
        raise BuildError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def toml_value(v) -> str:
    """A string, integer or inline table of strings and integers, as TOML."""
    if isinstance(v, bool) or not isinstance(v, (str, int, dict)):
        raise BuildError(f"policy fragment value {v!r}: not a string, integer or table")
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(v) if isinstance(v, str) else str(v)


def merge_fragments(fragments: list) -> str:
    """One TOML fragment from several `--format policy` outputs: their comments, then
    each table once with every value of each key (docs/measure.md: "merge the
    fragments"), parsed back as a check."""
    comments, tables = [], {}
    for frag in fragments:
        comments += [line for line in frag.splitlines() if line.startswith("#")]
        for table, keys in tomllib.loads(frag).items():
            for key, values in keys.items():
                merged = tables.setdefault(table, {}).setdefault(key, [])
                merged += [v for v in values if v not in merged]
    lines = list(comments)
    for table, keys in tables.items():
        lines.append(f"[{table}]")
        for key, values in keys.items():
            lines.append(f"{key} = [")
            lines += [f"  {toml_value(v)}," for v in values]
            lines.append("]")
    text = "\n".join(lines) + "\n"
    if tomllib.loads(text) != tables:
        raise BuildError("merging the policy fragments changed them")
    return text


def measurements(verify: Path, agent: Path, out: Path, cmdline: str, config: Path,
                 rtmr3: bool) -> dict:
    """Every value the manifest pins. `rtmr3`: whether the kernel can extend RTMR3 (the
    TDX measurement interface, CONFIG_TSM_MEASUREMENTS, Linux >= 6.16); only then does
    the agent put its digests into the evidence, and only then does the `[tdx]`
    fragment pin them (without it a policy pinning them would reject every quote of
    this image; the initrd event already covers the agent and its configuration)."""
    v = str(verify)
    # MRTD from the firmware; the RTMR1/RTMR2 events of the direct boot (kernel
    # Authenticode digest, OVMF's load options with the command line, the initrd).
    tdx_args = [v, "measure", "tdx", "--tdvf", "OVMF.fd", "--kernel", "vmlinuz",
                "--initrd", "initrd.img", "--cmdline", cmdline]
    tdx_code, tdx = tool_json(tdx_args + ["--format", "json"], out)
    if tdx_code != 0:
        raise BuildError(f"measure tdx refused the image: {tdx}")
    tdx_policy = tool_text(tdx_args + ["--format", "policy"], out)

    snp_rows, snp_policy = [], []
    for feats in SNP_GUEST_FEATURES:
        for n in SNP_VCPUS:
            base = [v, "measure", "snp", "--ovmf", "OVMF.fd", "--vcpus", str(n),
                    "--vcpu-type", SNP_VCPU_TYPE, "--vmm-type", "qemu", "--guest-features", feats]
            code, j = tool_json(base + ["--format", "json"], out)
            if code != 0:
                raise BuildError(f"measure snp refused OVMF.fd: {j}")
            snp_rows.append({"vcpus": n, "vcpu_type": SNP_VCPU_TYPE, "vcpu_sig": j["vcpu_sig"],
                             "guest_features": feats, "measurement": j["measurement"]})
            snp_policy.append(tool_text(base + ["--format", "policy"], out))
    # Measured direct boot needs an OVMF with an SNP_KERNEL_HASHES section (AmdSevX64);
    # the tool says whether this firmware has one, and the manifest records its answer.
    code, kh = tool_json([v, "measure", "snp", "--ovmf", "OVMF.fd", "--kernel", "vmlinuz",
                          "--initrd", "initrd.img", "--append", cmdline, "--vcpus", "1",
                          "--vcpu-type", SNP_VCPU_TYPE, "--vmm-type", "qemu",
                          "--guest-features", "0x21", "--format", "json"], out)
    kernel_hashes = {"computed": code == 0}
    if code == 0:
        kernel_hashes["measurement_1_vcpu"] = kh["measurement"]
    else:
        kernel_hashes["refusal"] = {"code": kh.get("code"), "reasons": kh.get("reasons")}

    # The disk image: the firmware measures the UKI into RTMR1 (its Authenticode digest,
    # which covers every section: kernel, initrd with the agent and its configuration,
    # command line); systemd-stub 252 measures its sections into the TPM's PCR 11 only
    # (the CC measurement protocol came in later versions), so its RTMR2 events are
    # recorded but not pinned: a policy pinning them would reject every quote of it. The
    # kernel's EFI stub measures its load options and initrd (PCR 9) through the CC
    # measurement protocol when there is no TPM: those RTMR2 events are pinned.
    uki_code, uki = tool_json([v, "measure", "tdx", "--tdvf", "OVMF.fd", "--uki", "uki.efi",
                               "--format", "json"], out)
    if uki_code != 0:
        raise BuildError(f"measure tdx --uki refused the UKI: {uki}")
    uki_pinned = [e for e in uki["boot_events"]
                  if e["rtmr"] == 1 or e["event_type"].startswith("EV_EVENT_TAG")]
    # The same boot with a TPM (a cloud's vTPM): the firmware's PCR 4 event, the stub's
    # PCR 11 events and the kernel's PCR 9 events, SHA-256 bank; all of them pinned (a
    # TPM gets the stub's). check.sh compares them with a real boot's TPM event log.
    vtpm_code, vtpm = tool_json([v, "measure", "vtpm", "--uki", "uki.efi", "--format", "json"], out)
    if vtpm_code != 0:
        raise BuildError(f"measure vtpm refused the UKI: {vtpm}")
    vtpm_policy = tool_text([v, "measure", "vtpm", "--uki", "uki.efi", "--format", "policy"], out)
    disk_fragment = (
        "# The disk image's UKI as the firmware measures it (RTMR1) and the kernel's load\n"
        "# options and initrd as its EFI stub measures them (RTMR2), from manifest.json\n"
        "[tdx]\nevents = [\n"
        + "".join(f"  {toml_value({'rtmr': e['rtmr'], 'digest': e['digest']})},\n" for e in uki_pinned)
        + "]\n"
    )

    a = tool_json([str(agent), "--config", str(config), "measure", "--binary", str(agent)], out)[1]
    a_policy = tool_text([str(agent), "--config", str(config), "measure", "--binary",
                          str(agent), "--format", "policy"], out)
    tdx["tdvf"].pop("path", None)
    return {
        "tdx": {
            "mrtd": tdx["mrtd"],
            "mrtd_order": tdx["mrtd_order"],
            "mrtd_two_pass": tdx["mrtd_two_pass"],
            "tdvf": tdx["tdvf"],
            "pages_added": tdx["pages_added"],
            "boot_events": tdx["boot_events"],
            "uki_boot_events": uki["boot_events"],
        },
        "vtpm": {
            "bank": vtpm["bank"],
            "uki_events": vtpm["pcr_events"],
            "pcr11_sha256": vtpm["pcr11_sha256"],
            "stub_version": vtpm["stub_version"],
            "not_predicted": vtpm["not_predicted"],
        },
        "snp": {
            "vmm_type": "qemu",
            "measurements": snp_rows,
            "kernel_hashes": kernel_hashes,
            "covers": "firmware (OVMF.fd), vCPU count and type, guest features; not the "
                      "kernel, initrd or command line unless kernel_hashes.computed",
        },
        "agent": {
            "agent_digest": a["agent_digest"],
            "config_digest": a["config_digest"],
            "canonical_config": a["canonical_config"],
            "in_tdx_evidence": rtmr3,
            "policy_fragment": a_policy,
        },
        "policy_fragments": {
            "snp": merge_fragments(snp_policy),
            "tdx": merge_fragments([tdx_policy, a_policy] if rtmr3 else [tdx_policy]),
            "tdx-disk": merge_fragments([disk_fragment, a_policy] if rtmr3 else [disk_fragment]),
            "vtpm-disk": merge_fragments([vtpm_policy]),
        },
    }


# ---------------------------------------------------------------------------


def build(args: argparse.Namespace) -> None:
    lock_path = HERE / "inputs.lock"
    lock_bytes = lock_path.read_bytes()
    lock = tomllib.loads(lock_bytes.decode())
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    agent_src = Path(args.agent)
    if not agent_src.is_file():
        raise BuildError(f"no agent executable at {agent_src} (build it, or give --agent)")

    fetcher = Fetcher(lock, Path(args.cache))
    pkgs = {p["name"]: p for p in lock["package"]}
    with tempfile.TemporaryDirectory() as t:
        kernel_pkgs = lock["kernel"]["packages"]
        missing = [n for n in kernel_pkgs if n not in pkgs]
        if missing:
            raise BuildError(f"[kernel] packages {missing} are not pinned as [[package]]")
        # The kernel's packages (image, modules, configuration) into one tree.
        kroot = Path(t) / "kernel"
        for n in kernel_pkgs:
            r = run(["dpkg-deb", "-x", str(fetcher.fetch(pkgs[n])), str(kroot)])
            if r.returncode != 0:
                raise BuildError(f"dpkg-deb -x {n}: {r.stderr.strip()}")
        roots = {n: extract(fetcher.fetch(p), Path(t) / n) for n, p in pkgs.items() if n not in kernel_pkgs}
        vmlinuz_path, kver, config_path = find_kernel(kroot)
        vmlinuz = [vmlinuz_path]
        ovmf = resolve_in(roots["ovmf"], "usr/share/ovmf/OVMF.fd")
        if ovmf is None:
            raise BuildError("the ovmf package has no usr/share/ovmf/OVMF.fd")

        tree = Tree()
        for d in ("dev", "proc", "sys", "run", "tmp", "root", "etc/sigil", "var/lib/sigil-agent", "sbin", "usr/bin", "usr/sbin"):
            tree.dir(d, 0o1777 if d == "tmp" else 0o700 if d in ("root", "var/lib/sigil-agent") else 0o755)
        tree.chardev("dev/console", 0o600, 5, 1)
        tree.chardev("dev/null", 0o666, 1, 3)
        busybox = roots["busybox-static"] / "bin/busybox"
        tree.file("bin/busybox", busybox.read_bytes(), 0o755)
        tree.symlink("bin/sh", "busybox")
        tree.file("init", (HERE / "init").read_bytes(), 0o755)
        tree.file("etc/inittab", (HERE / "inittab").read_bytes())
        tree.file("usr/share/udhcpc/default.script", (HERE / "udhcpc.script").read_bytes(), 0o755)
        tree.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        tree.file("etc/group", b"root:x:0:\n")
        agent = agent_src.read_bytes()
        tree.file("usr/local/bin/sigil-agent", agent, 0o755)
        tree.file("usr/share/sigil/agent.toml", (HERE / "agent.toml").read_bytes())
        unit = REPO / "deploy/systemd/sigil-agent.service"
        tree.file("usr/lib/systemd/system/sigil-agent.service", unit.read_bytes())
        modules = kernel_modules(tree, kroot, kver, lock["kernel"]["modules"])
        tree.file("etc/sigil/modules", "".join(m["path"] + "\n" for m in modules).encode())
        libs = agent_libraries(tree, agent_src, roots, pkgs)

        cmdline = lock["kernel"]["cmdline"]
        initrd = gzip.compress(tree.cpio(mtime), compresslevel=6, mtime=0)
        files = {
            "vmlinuz": vmlinuz[0].read_bytes(),
            "initrd.img": initrd,
            "cmdline": cmdline.encode(),
            "OVMF.fd": ovmf.read_bytes(),
        }
        # The disk image: the same kernel, initrd and command line in a UKI.
        stub = resolve_in(roots["systemd-boot-efi"], "usr/lib/systemd/boot/efi/linuxx64.efi.stub")
        if stub is None:
            raise BuildError("the systemd-boot-efi package has no linuxx64.efi.stub")
        try:
            parts = {".osrel": disk.os_release(kver), ".cmdline": cmdline.encode(),
                     ".initrd": initrd, ".linux": files["vmlinuz"]}
            files["uki.efi"] = disk.build_uki(stub.read_bytes(),
                                              [(n, parts[n]) for n in disk.UKI_SECTIONS])
        except disk.DiskError as e:
            raise BuildError(f"UKI: {e}") from e
        for name, data in files.items():
            (out / name).write_bytes(data)
        log(f"initrd: {len(tree.entries)} entries, {len(initrd)} bytes gzip")
        try:
            disk_layout = disk.build_disk(out, files["uki.efi"], mtime)
        except disk.DiskError as e:
            raise BuildError(f"disk: {e}") from e
        log(f"disk: {disk_layout['size']} bytes, ESP {disk_layout['esp_bytes']} bytes")
        # The agent is measured as the copy the image carries (the bytes RTMR3 and the
        # simulated measurement see), from a scratch file outside the output.
        scratch = Path(t) / "sigil-agent"
        scratch.write_bytes(agent)
        scratch.chmod(0o755)
        kconfig = config_path.read_text()
        rtmr3 = re.search(r"^CONFIG_TSM_MEASUREMENTS=[ym]$", kconfig, re.M) is not None
        measured = measurements(Path(args.verify).resolve(), scratch, out.resolve(), cmdline,
                                HERE / "agent.toml", rtmr3)

    manifest = {
        "schema": "sigil.agent-image.v1",
        "source_date_epoch": mtime,
        "inputs": {
            "lock_sha256": hashlib.sha256(lock_bytes).hexdigest(),
            "packages": [{k: p[k] for k in ("name", "version", "sha256")} for p in lock["package"]],
            "kernel_release": kver,
            "agent": digests(agent),
            "agent_libraries": libs,
            "kernel_modules": modules,
        },
        "image": {
            "files": {name: digests(data) for name, data in files.items()},
            "cmdline": cmdline,
            "initrd_entries": len(tree.entries),
            "uki_sections": list(disk.UKI_SECTIONS),
        },
        "disk": disk_layout,
        **measured,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    for tee, fragment in measured["policy_fragments"].items():
        (out / f"policy-{tee}.toml").write_text(fragment)
    log(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--agent", required=True, help="the sigil-agent executable to carry")
    ap.add_argument("--verify", required=True, help="the sigil-verify executable that measures")
    ap.add_argument("--cache", required=True, help="where fetched .debs are kept")
    try:
        build(ap.parse_args())
    except BuildError as e:
        print(f"image: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
