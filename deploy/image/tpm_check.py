#!/usr/bin/env python3
"""Checks a real TPM boot of the disk image against the manifest's predictions
(deploy/image/README.md, "The TPM check").

    python3 deploy/image/tpm_check.py --console LOG --image DIR --verify SIGIL_VERIFY

The image's /init prints the TPM's event log (base64, between `sigil-tpm-eventlog-begin`
and `sigil-tpm-eventlog-end`) and its PCRs (`sigil-tpm-pcr BANK N HEX`) on the console.
This reads them back and checks, in order:

1. the log (TCG PC Client crypto-agile format, SHA-256 and SHA-384 banks) replays, in
   both banks, to the PCRs the guest read, for every PCR the log extends;
2. the UKI's events as they happened equal the manifest's predictions, exactly:
   `vtpm.uki_events` (`sigil-verify measure vtpm --uki`, SHA-256) and
   `tdx.uki_boot_events` (`measure tdx --uki`, SHA-384): PCR 4's first
   application event is the UKI; PCR 11 holds exactly systemd-stub's section events, in
   order, and replays to `pcr11_sha256`; PCR 9 holds exactly the kernel's load options
   and initrd events. The second application event in PCR 4 (systemd-stub starting the
   kernel with LoadImage) is the kernel's Authenticode digest, `tdx.boot_events`' kernel
   event of the direct boot;
3. every `[vtpm] events` rule of `policy-vtpm-disk.toml` is an event of the log (its PCR,
   its SHA-256 digest); every `[tdx] events` rule of `policy-tdx-disk.toml` is an event
   of the log's SHA-384 bank in the PCRs its RTMR stands for (RTMR1: PCR 2-6; RTMR2:
   PCR 8-15), the same events a TD's firmware and kernel put into the CCEL;
4. the comparison can fail: the same log against `measure vtpm --uki`'s predictions
   for the UKI with one byte of its command line changed, and with one byte of its
   initrd changed, must differ, naming the events that changed;
5. the verifier reads the same log as this does: `sigil-verify eventlog --tpm` with the
   guest's SHA-256 PCRs (`--pcrs`) and `policy-vtpm-disk.toml` accepts it, and its
   replayed PCRs equal this reader's.

Python's standard library only; the event log is read here independently of the
verifier's parser (step 5 then compares the two). Exit 0 when everything holds, 1
otherwise (each difference said).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import struct
import subprocess
import sys
import tomllib
from pathlib import Path

SHA256, SHA384 = 0x000B, 0x000C
EV_NO_ACTION = 0x3
EV_EVENT_TAG = 0x6
EV_IPL = 0xD
EV_EFI_BOOT_SERVICES_APPLICATION = 0x80000003
# CC MR index mapping (UEFI 2.10 38.4.1): the TPM PCRs an RTMR stands for.
RTMR_PCRS = {0: range(1, 2), 1: range(2, 7), 2: range(8, 16)}


class CheckError(Exception):
    pass


def console_output(console: str) -> tuple[bytes, dict]:
    """The event log and the PCRs ({bank: {n: bytes}}) the guest printed."""
    text = console.replace("\r", "")
    m = re.search(r"^sigil-tpm-eventlog-begin\n(.*?)^sigil-tpm-eventlog-end$", text, re.M | re.S)
    if not m:
        raise CheckError("the console holds no TPM event log (no TPM, or /init did not print it)")
    log = base64.b64decode("".join(m.group(1).split()), validate=True)
    pcrs: dict = {}
    for bank, n, value in re.findall(r"^sigil-tpm-pcr (\w+) (\d+) ([0-9A-Fa-f]+)$", text, re.M):
        pcrs.setdefault(bank, {})[int(n)] = bytes.fromhex(value)
    if "sha256" not in pcrs:
        raise CheckError("the console holds no SHA-256 PCR values")
    return log, pcrs


def parse_log(log: bytes) -> tuple[dict, list]:
    """({alg: digest size}, [event]) of a TCG PC Client crypto-agile log; each event a
    dict with pcr, type, digests {alg: bytes}, data."""
    try:
        _, etype = struct.unpack_from("<II", log, 0)
        (size,) = struct.unpack_from("<I", log, 28)
        spec = log[32:32 + size]
        if etype != EV_NO_ACTION or not spec.startswith(b"Spec ID Event03\0"):
            raise CheckError("the log does not open with a crypto-agile Spec ID event")
        (count,) = struct.unpack_from("<I", spec, 24)
        algs = dict(struct.unpack_from("<HH", spec, 28 + 4 * i) for i in range(count))
        at, events = 32 + size, []
        while at < len(log):
            pcr, etype, n = struct.unpack_from("<III", log, at)
            at += 12
            digests = {}
            for _ in range(n):
                (alg,) = struct.unpack_from("<H", log, at)
                digests[alg] = log[at + 2:at + 2 + algs[alg]]
                at += 2 + algs[alg]
            (size,) = struct.unpack_from("<I", log, at)
            data = log[at + 4:at + 4 + size]
            if len(data) != size:
                raise CheckError(f"the log is truncated at byte {at}")
            at += 4 + size
            events.append({"pcr": pcr, "type": etype, "digests": digests, "data": data})
    except (struct.error, KeyError) as e:
        raise CheckError(f"the log does not parse: {e!r}") from e
    return algs, events


def replay(events: list, alg: int) -> dict:
    """PCR values from the log (PC Client initial values: 17-22 all ones, PCR 0's
    locality from a StartupLocality event), for the PCRs the log extends."""
    hashfn = {SHA256: hashlib.sha256, SHA384: hashlib.sha384}[alg]
    size = hashfn().digest_size
    regs = {}
    locality = 0
    for e in events:
        if e["type"] == EV_NO_ACTION:
            if e["data"].startswith(b"StartupLocality\0") and len(e["data"]) == 17:
                locality = e["data"][16]
            continue
        n = e["pcr"]
        if n not in regs:
            regs[n] = b"\xff" * size if 17 <= n <= 22 else b"\0" * (size - 1) + (
                bytes([locality]) if n == 0 else b"\0")
        regs[n] = hashfn(regs[n] + e["digests"][alg]).digest()
    return regs


def tool_json(cmd: list) -> dict:
    r = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if r.returncode != 0:
        raise CheckError(f"{' '.join(map(str, cmd))}: exit {r.returncode}: {r.stdout}{r.stderr}")
    return json.loads(r.stdout)


def compare(events: list, vtpm: dict, pred384: list, kernel_sha384: str | None) -> list:
    """Every difference between the boot's UKI events and the predictions (`vtpm`: the
    manifest's `vtpm` or `measure vtpm --uki`'s output; `pred384`: `measure tdx --uki`'s
    boot events, or empty to compare the SHA-256 bank only), each naming the event."""
    diffs = []
    measured = [e for e in events if e["type"] != EV_NO_ACTION]

    def show(e: dict, alg: int) -> str:
        return e["digests"][alg].hex()

    pred256 = vtpm["uki_events"] if "uki_events" in vtpm else vtpm["pcr_events"]
    # PCR 4: the firmware's application events; the first is the UKI.
    apps = [e for e in measured if e["pcr"] == 4 and e["type"] == EV_EFI_BOOT_SERVICES_APPLICATION]
    uki256 = [p for p in pred256 if p["pcr"] == 4]
    uki384 = [p for p in pred384 if p["rtmr"] == 1]
    if not apps:
        diffs.append("PCR 4: no EV_EFI_BOOT_SERVICES_APPLICATION event")
    else:
        if show(apps[0], SHA256) != uki256[0]["digest"]:
            diffs.append(f"PCR 4 uki: the boot measured {show(apps[0], SHA256)}, "
                         f"predicted {uki256[0]['digest']}")
        if uki384 and show(apps[0], SHA384) != uki384[0]["digest"]:
            diffs.append(f"PCR 4 uki (SHA-384, RTMR1): the boot measured {show(apps[0], SHA384)}, "
                         f"predicted {uki384[0]['digest']}")
        if kernel_sha384 is not None:
            if len(apps) < 2 or show(apps[1], SHA384) != kernel_sha384:
                diffs.append("PCR 4: the second application event is not the kernel's Authenticode "
                             f"digest {kernel_sha384}")
    # PCR 11 (systemd-stub) and PCR 9 (the kernel's EFI stub): exactly the predicted
    # events, in order; the SHA-384 ones are measure tdx --uki's RTMR2 events in order.
    rtmr2 = [p for p in pred384 if p["rtmr"] == 2]
    for pcr in (11, 9):
        got = [e for e in measured if e["pcr"] == pcr]
        want = [p for p in pred256 if p["pcr"] == pcr]
        want_what = {p["what"] for p in want}
        want384 = [p for p in rtmr2 if p["what"] in want_what]
        if len(got) != len(want):
            diffs.append(f"PCR {pcr}: the boot has {len(got)} events, predicted {len(want)} "
                         f"({', '.join(p['what'] for p in want)})")
        for i, (g, w) in enumerate(zip(got, want)):
            if show(g, SHA256) != w["digest"]:
                diffs.append(f"PCR {pcr} event {i} ({w['what']}): the boot measured "
                             f"{show(g, SHA256)}, predicted {w['digest']}")
            elif i < len(want384) and show(g, SHA384) != want384[i]["digest"]:
                diffs.append(f"PCR {pcr} event {i} ({w['what']}, SHA-384): the boot measured "
                             f"{show(g, SHA384)}, predicted {want384[i]['digest']}")
            if w["event_type"] == "EV_IPL" and g["type"] != EV_IPL:
                diffs.append(f"PCR {pcr} event {i} ({w['what']}): type {g['type']:#x}, not EV_IPL")
            if w["event_type"].startswith("EV_EVENT_TAG"):
                tag = w["event_type"].split(" ", 1)[1].encode() + b"\0"
                if g["type"] != EV_EVENT_TAG or g["data"][8:] != tag:
                    diffs.append(f"PCR {pcr} event {i} ({w['what']}): not the tagged event {tag!r}")
    pcr11 = replay([e for e in measured if e["pcr"] == 11], SHA256).get(11, b"\0" * 32)
    if pcr11.hex() != vtpm["pcr11_sha256"]:
        diffs.append(f"PCR 11 replays to {pcr11.hex()}, predicted pcr11_sha256 {vtpm['pcr11_sha256']}")
    return diffs


def policy_rules(events: list, image: Path) -> tuple[list, int, int]:
    """Every rule of the disk fragments the log does not show."""
    measured = [e for e in events if e["type"] != EV_NO_ACTION]
    missing = []
    vtpm = tomllib.loads((image / "policy-vtpm-disk.toml").read_text())["vtpm"]["events"]
    for r in vtpm:
        if not any(e["pcr"] == r["pcr"] and e["digests"][SHA256].hex() == r["digest"] for e in measured):
            missing.append(f"policy-vtpm-disk.toml: no PCR {r['pcr']} event {r['digest']}")
    tdx = tomllib.loads((image / "policy-tdx-disk.toml").read_text())["tdx"]["events"]
    for r in tdx:
        pcrs = RTMR_PCRS[r["rtmr"]]
        if not any(e["pcr"] in pcrs and e["digests"][SHA384].hex() == r["digest"] for e in measured):
            missing.append(f"policy-tdx-disk.toml: no RTMR{r['rtmr']} (PCR {pcrs.start}-{pcrs.stop - 1}) "
                           f"event {r['digest']}")
    return missing, len(vtpm), len(tdx)


def section(uki: bytes, name: bytes) -> tuple[int, int]:
    """(file offset, VirtualSize) of a PE section."""
    pe = struct.unpack_from("<I", uki, 0x3C)[0]
    count, opt_size = struct.unpack_from("<H", uki, pe + 6)[0], struct.unpack_from("<H", uki, pe + 20)[0]
    table = pe + 24 + opt_size
    for i in range(count):
        n, vsize, _, _, raw = struct.unpack_from("<8sIIII", uki, table + 40 * i)
        if n.rstrip(b"\0") == name:
            return raw, vsize
    raise CheckError(f"the UKI has no {name.decode()} section")


def mutated(uki: bytes, name: bytes, at: int) -> bytes:
    """The UKI with one byte of a section changed (its length unchanged)."""
    raw, vsize = section(uki, name)
    out = bytearray(uki)
    pos = raw + (at % vsize)
    out[pos] = ord("7") if out[pos] != ord("7") else ord("8")
    return bytes(out)


def verifier_reads(verify: str, log: bytes, events: list, pcrs: dict, image: Path,
                   scratch: Path) -> list:
    """Step 5: `sigil-verify eventlog --tpm` on the log, the guest's SHA-256 PCRs and the
    vTPM fragment: accepted, with the PCRs this reader replays."""
    (scratch / "tpm-log.bin").write_bytes(log)
    given = {f"pcr{n:02}": v.hex() for n, v in pcrs.get("sha256", {}).items()}
    (scratch / "tpm-pcrs.json").write_text(json.dumps(given))
    out = tool_json([verify, "eventlog", "--tpm", "--log", str(scratch / "tpm-log.bin"),
                     "--pcrs", str(scratch / "tpm-pcrs.json"),
                     "--policy", str(image / "policy-vtpm-disk.toml"), "--format", "json"])
    ours = {f"pcr{n:02}": v.hex() for n, v in replay(events, SHA256).items()}
    failures = []
    if out.get("verdict") != "accepted" or out["claims"].get("pcrs_given") != "matched":
        failures.append(f"sigil-verify eventlog --tpm: {out.get('verdict')}: {out.get('reasons')}")
    if out["claims"]["pcrs"] != ours:
        failures.append(f"sigil-verify eventlog --tpm replays to {out['claims']['pcrs']}, "
                        f"this reader to {ours}")
    if len(out["claims"]["events"]) != len(events):
        failures.append(f"sigil-verify eventlog --tpm reads {len(out['claims']['events'])} "
                        f"events, this reader {len(events)}")
    if not failures:
        print(f"sigil-verify eventlog --tpm: accepted with the guest's PCRs and "
              f"policy-vtpm-disk.toml; the same {len(events)} events and PCRs "
              f"{', '.join(k[3:] for k in sorted(ours))} as this reader")
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--console", required=True, help="the serial console log of the TPM boot")
    ap.add_argument("--image", required=True, help="the image directory (build.sh --out)")
    ap.add_argument("--verify", required=True, help="the sigil-verify executable")
    ap.add_argument("--scratch", required=True, help="a directory for the mutated UKIs")
    args = ap.parse_args()
    image, scratch = Path(args.image), Path(args.scratch)
    manifest = json.loads((image / "manifest.json").read_text())
    try:
        log, pcrs = console_output(Path(args.console).read_text(errors="replace"))
        algs, events = parse_log(log)
        print(f"event log: {len(log)} bytes, {len(events)} events, banks "
              + ", ".join({SHA256: "sha256", SHA384: "sha384"}.get(a, hex(a)) for a in algs))
        if SHA256 not in algs or SHA384 not in algs:
            raise CheckError("the log must hold the SHA-256 and SHA-384 banks")
        # 1. Replay, both banks, every PCR the log extends.
        failures = []
        for alg, bank in ((SHA256, "sha256"), (SHA384, "sha384")):
            regs = replay(events, alg)
            differ = [f"{bank} PCR {n}: the log replays to {value.hex()}, the TPM holds "
                      f"{pcrs.get(bank, {}).get(n, b'').hex() or 'nothing'}"
                      for n, value in sorted(regs.items()) if pcrs.get(bank, {}).get(n) != value]
            failures += differ
            if not differ:
                print(f"replay {bank}: PCRs {', '.join(map(str, sorted(regs)))} equal the TPM's")
        untouched = sorted(n for n, v in pcrs["sha256"].items()
                           if n not in replay(events, SHA256) and v.strip(b"\0") and v.strip(b"\xff"))
        if untouched:
            print(f"not in the firmware log: PCR {', '.join(map(str, untouched))} "
                  "(the kernel's IMA measures into PCR 10 and logs in its own list)")
        # 2. The UKI's events against the manifest's predictions (measure vtpm --uki and
        # measure tdx --uki at build time).
        vtpm = manifest["vtpm"]
        kernel = next((e["digest"] for e in manifest["tdx"]["boot_events"] if e["what"] == "kernel"), None)
        diffs = compare(events, vtpm, manifest["tdx"]["uki_boot_events"], kernel)
        failures += diffs
        nine = [p["what"] for p in vtpm["uki_events"] if p["pcr"] == 9]
        eleven = sum(1 for p in vtpm["uki_events"] if p["pcr"] == 11)
        if not diffs:
            print(f"manifest: PCR 4 uki, PCR 11 {eleven} systemd-stub events (stub "
                  f"{vtpm['stub_version']}), PCR 9 {len(nine)} kernel events ({', '.join(nine)}): "
                  "equal to the boot's, SHA-256 and SHA-384 (RTMR1/RTMR2 predictions); PCR 11 = "
                  "pcr11_sha256; PCR 4's second application event = tdx.boot_events' kernel")
        for p in vtpm.get("not_predicted", []):
            print(f"not predicted: {p['what']}: {p['reason']}")
        # 3. The fragments' rules.
        missing, nv, nt = policy_rules(events, image)
        failures += missing
        if not missing:
            print(f"policy-vtpm-disk.toml: all {nv} [vtpm] events rules are events of the log; "
                  f"policy-tdx-disk.toml: all {nt} [tdx] events rules are in the log's SHA-384 bank")
        # 4. The comparison fails for a changed command line and a changed initrd.
        uki = (image / "uki.efi").read_bytes()
        for what, name, expect in (("command line", b".cmdline", ("uki", ".cmdline contents", "kernel load options")),
                                   ("initrd", b".initrd", ("uki", ".initrd contents", "kernel initrd"))):
            path = scratch / f"uki-changed-{name.decode().strip('.')}.efi"
            path.write_bytes(mutated(uki, name, 40))
            d = compare(events, tool_json([args.verify, "measure", "vtpm", "--uki", str(path)]), [], None)
            named = [w for w in expect if any(f"({w}" in x or f" {w}:" in x for x in d)]
            if len(named) != len(expect):
                failures.append(f"a UKI with a changed {what}: the comparison names {named}, "
                                f"not all of {list(expect)}: {d}")
            else:
                print(f"a UKI with one byte of its {what} changed: rejected, {len(d)} differences "
                      f"({', '.join(expect)})")
        # 5. The verifier's own reader of TPM logs, on the same log and PCRs.
        failures += verifier_reads(args.verify, log, events, pcrs, image, scratch)
    except CheckError as e:
        print(f"tpm check: {e}", file=sys.stderr)
        return 1
    for f in failures:
        print(f"FAILED: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
