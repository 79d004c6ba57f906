#!/usr/bin/env python3
"""Signs the agent image's UKI for UEFI Secure Boot and writes the disk again around it
(deploy/image/README.md, "Signing for Secure Boot").

    python3 deploy/image/sign.py --image DIR --key KEY.pem --cert CERT.pem --out OUT \\
        --verify SIGIL_VERIFY

DIR is a build of `build.sh` (unsigned, reproducible); KEY is the provider's db signing
key (unencrypted PEM), CERT its certificate (PEM), the one the VM's firmware trusts in its
`db`. OUT receives the same image with `uki.efi` signed by `sbsign` (sbsigntool), the disk
(`disk.raw`, `disk.tar.gz`, `disk.vhd`) written again around it with the build's
SOURCE_DATE_EPOCH, `secure-boot-db.der` (CERT in DER, to enroll: GCP's image `db`, an
OVMF variable store) and the manifest with the new file digests and a `secure_boot`
section. Before writing it checks, and refuses otherwise (exit 1):

1. DIR's `uki.efi` is the one its manifest names (its SHA-256);
2. `sbverify --cert CERT` accepts the signed UKI;
3. the signature is all that changed: the signed UKI with its signature removed
   (`sbattach --remove`) is DIR's `uki.efi`, byte for byte, so anyone can check that a
   signed image is the reproducible build plus a signature;
4. what a policy pins did not change: `sigil-verify measure vtpm --uki` and `measure tdx
   --uki` of the signed UKI give the manifest's `vtpm.uki_events`, `pcr11_sha256` and
   `tdx.uki_boot_events` (Authenticode digests leave the signature out).

The signature itself is not reproducible (sbsign puts the signing time into it): the
signed files' digests are the manifest's, the unsigned UKI's stay in
`secure_boot.unsigned_uki`. With Secure Boot on, the firmware also measures the
Secure Boot variables and the db certificate that allowed the UKI into PCR 7 (RTMR0 on
TDX); those depend on the VM's variable store, not on the image, and are not predicted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import disk  # noqa: E402

DISK_FILES = ("disk.raw", "disk.tar.gz", "disk.vhd")


class SignError(Exception):
    """Why the image was not signed."""


def digests(data: bytes) -> dict:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "sha384": hashlib.sha384(data).hexdigest()}


def run(cmd: list) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([str(c) for c in cmd], check=False, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise SignError(f"{cmd[0]} is missing (Debian: sbsigntool, openssl)") from e


def must(cmd: list, what: str) -> str:
    r = run(cmd)
    if r.returncode != 0:
        raise SignError(f"{what}: {' '.join(map(str, cmd))}: exit {r.returncode}: "
                        f"{(r.stderr or r.stdout).strip()}")
    return r.stdout


def pinned(events: list) -> list:
    """What a policy pins of each event (the events also name their input file)."""
    keys = ("pcr", "rtmr", "what", "event_type", "digest")
    return [{k: e[k] for k in keys if k in e} for e in events]


def measured(verify: Path, image: Path, uki: Path) -> tuple[list, str, list]:
    """(vtpm PCR events, pcr11_sha256, TDX boot events) of `uki`."""
    v = json.loads(must([verify, "measure", "vtpm", "--uki", uki, "--format", "json"],
                        "measure vtpm --uki"))
    t = json.loads(must([verify, "measure", "tdx", "--tdvf", image / "OVMF.fd", "--uki", uki,
                         "--format", "json"], "measure tdx --uki"))
    return v["pcr_events"], v["pcr11_sha256"], t["boot_events"]


def sign(image: Path, key: Path, cert: Path, out: Path, verify: Path) -> dict:
    manifest = json.loads((image / "manifest.json").read_text())
    unsigned = (image / "uki.efi").read_bytes()
    # 1. The image is what its manifest says.
    if hashlib.sha256(unsigned).hexdigest() != manifest["image"]["files"]["uki.efi"]["sha256"]:
        raise SignError(f"{image / 'uki.efi'} is not the UKI its manifest names")
    if "secure_boot" in manifest:
        raise SignError(f"{image} is signed already")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as t:
        signed_path = Path(t) / "uki.efi"
        must(["sbsign", "--key", key, "--cert", cert, "--output", signed_path, image / "uki.efi"],
             "sbsign")
        # 2. The firmware's check, as sbverify makes it.
        must(["sbverify", "--cert", cert, signed_path], "sbverify of the signed UKI")
        # 3. Only the signature was added.
        stripped = Path(t) / "stripped.efi"
        shutil.copyfile(signed_path, stripped)
        must(["sbattach", "--remove", stripped], "sbattach --remove")
        if stripped.read_bytes() != unsigned:
            raise SignError("the signed UKI without its signature is not the unsigned UKI")
        # 4. The measurements a policy pins.
        events, pcr11, tdx_events = measured(verify, image, signed_path)
        if (pinned(events) != pinned(manifest["vtpm"]["uki_events"])
                or pcr11 != manifest["vtpm"]["pcr11_sha256"]):
            raise SignError("the signed UKI's vTPM events differ from the manifest's")
        if pinned(tdx_events) != pinned(manifest["tdx"]["uki_boot_events"]):
            raise SignError("the signed UKI's TDX boot events differ from the manifest's")
        signed = signed_path.read_bytes()
    der = must_bytes(["openssl", "x509", "-in", cert, "-outform", "DER"], "openssl x509")
    subject = must(["openssl", "x509", "-in", cert, "-noout", "-subject", "-nameopt", "RFC2253"],
                   "openssl x509 -subject").strip().removeprefix("subject=")
    for p in image.iterdir():
        if p.is_file() and p.name not in ("uki.efi", "manifest.json", *DISK_FILES):
            shutil.copyfile(p, out / p.name)
    (out / "uki.efi").write_bytes(signed)
    (out / "secure-boot-db.der").write_bytes(der)
    layout = disk.build_disk(out, signed, int(manifest["source_date_epoch"]))
    manifest["image"]["files"]["uki.efi"] = digests(signed)
    manifest["disk"] = layout
    manifest["secure_boot"] = {
        "signed": True,
        "db_cert": "secure-boot-db.der",
        "db_cert_sha256": hashlib.sha256(der).hexdigest(),
        "db_cert_subject": subject,
        "unsigned_uki": digests(unsigned),
        "not_predicted": "PCR 7 (RTMR0 on TDX): the Secure Boot variables and the db "
                         "certificate that allowed the UKI, from the VM's variable store",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def must_bytes(cmd: list, what: str) -> bytes:
    try:
        r = subprocess.run([str(c) for c in cmd], check=False, capture_output=True)
    except FileNotFoundError as e:
        raise SignError(f"{cmd[0]} is missing") from e
    if r.returncode != 0:
        raise SignError(f"{what}: exit {r.returncode}: {r.stderr.decode(errors='replace').strip()}")
    return r.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", required=True, help="an unsigned build (build.sh --out)")
    ap.add_argument("--key", required=True, help="the db signing key, unencrypted PEM")
    ap.add_argument("--cert", required=True, help="its certificate, PEM")
    ap.add_argument("--out", required=True, help="where the signed image goes")
    ap.add_argument("--verify", required=True, help="the sigil-verify executable")
    a = ap.parse_args()
    try:
        m = sign(Path(a.image), Path(a.key), Path(a.cert), Path(a.out), Path(a.verify))
    except (SignError, disk.DiskError) as e:
        print(f"sign: error: {e}", file=sys.stderr)
        return 1
    sb = m["secure_boot"]
    print(f"signed: uki.efi {m['image']['files']['uki.efi']['sha256']} (unsigned "
          f"{sb['unsigned_uki']['sha256']}), db certificate {sb['db_cert_sha256']} "
          f"({sb['db_cert_subject']}); disk.raw {m['disk']['files']['disk.raw']['sha256']}; "
          "the measurements a policy pins are unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
