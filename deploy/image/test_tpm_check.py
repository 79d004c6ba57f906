"""Unit tests of tpm_check.py on a synthetic TPM boot: a crypto-agile event log with the
events of a UKI boot, printed as /init prints it (run by deploy/image/check.sh)."""

from __future__ import annotations

import base64
import hashlib
import struct
import unittest

import tpm_check as t

CMDLINE = "console=ttyS0 panic=-1"
INITRD = b"initrd bytes " * 100
UKI = b"the UKI's Authenticode input"
KERNEL = b"the kernel's Authenticode input"


def digests(data: bytes) -> dict:
    return {t.SHA256: hashlib.sha256(data).digest(), t.SHA384: hashlib.sha384(data).digest()}


def record(pcr: int, etype: int, d: dict, data: bytes) -> bytes:
    out = struct.pack("<III", pcr, etype, len(d))
    for alg, digest in d.items():
        out += struct.pack("<H", alg) + digest
    return out + struct.pack("<I", len(data)) + data


def header() -> bytes:
    spec = b"Spec ID Event03\0" + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, 2)
    spec += struct.pack("<HHHH", t.SHA256, 32, t.SHA384, 48) + b"\0"
    return struct.pack("<II", 0, t.EV_NO_ACTION) + b"\0" * 20 + struct.pack("<I", len(spec)) + spec


def tagged(tag: int, text: str) -> bytes:
    body = text.encode() + b"\0"
    return struct.pack("<II", tag, len(body)) + body


def boot() -> tuple[list, bytes]:
    """(the predicted events as measure vtpm / measure tdx print them, the log)."""
    sections = [(".linux", b"kernel"), (".cmdline", CMDLINE.encode()), (".initrd", INITRD)]
    opts = (CMDLINE + "\0").encode("utf-16-le")
    events = [(4, t.EV_EFI_BOOT_SERVICES_APPLICATION, "uki", UKI, b"")]
    for name, data in sections:
        events.append((11, t.EV_IPL, f"{name} name", (name + "\0").encode(), name.encode("utf-16-le")))
        events.append((11, t.EV_IPL, f"{name} contents", data, name.encode("utf-16-le")))
    events.append((4, t.EV_EFI_BOOT_SERVICES_APPLICATION, None, KERNEL, b""))
    events.append((9, t.EV_EVENT_TAG, "kernel load options", opts, tagged(0x8F3B22ED, "LOADED_IMAGE::LoadOptions")))
    events.append((9, t.EV_EVENT_TAG, "kernel initrd", INITRD, tagged(0x8F3B22EC, "Linux initrd")))
    log = header() + record(0, 0x8, digests(b"firmware"), b"")
    for pcr, etype, _, measured, data in events:
        log += record(pcr, etype, digests(measured), data)
    return events, log


def predictions(events: list) -> tuple[dict, list]:
    types = {t.EV_IPL: "EV_IPL", t.EV_EFI_BOOT_SERVICES_APPLICATION: "EV_EFI_BOOT_SERVICES_APPLICATION"}
    vtpm, tdx, reg = [], [], b"\0" * 32
    for pcr, etype, what, measured, data in events:
        if what is None:
            continue
        etype_name = types.get(etype) or "EV_EVENT_TAG " + data[8:-1].decode()
        vtpm.append({"pcr": pcr, "what": what, "event_type": etype_name,
                     "digest": hashlib.sha256(measured).hexdigest()})
        tdx.append({"rtmr": 1 if pcr == 4 else 2, "what": what, "event_type": etype_name,
                    "digest": hashlib.sha384(measured).hexdigest()})
        if pcr == 11:
            reg = hashlib.sha256(reg + hashlib.sha256(measured).digest()).digest()
    return {"pcr_events": vtpm, "pcr11_sha256": reg.hex()}, tdx


class TpmCheckTest(unittest.TestCase):
    def test_console_and_replay_works(self):
        _, log = boot()
        _, parsed = t.parse_log(log)
        regs = t.replay(parsed, t.SHA256)
        pcr_lines = "".join(f"sigil-tpm-pcr sha256 {n} {v.hex().upper()}\r\n" for n, v in regs.items())
        console = ("BdsDxe: starting\r\nsigil-tpm-eventlog-begin\r\n"
                   + "\r\n".join(base64.encodebytes(log).decode().split())
                   + "\r\nsigil-tpm-eventlog-end\r\n" + pcr_lines)
        got_log, pcrs = t.console_output(console)
        self.assertEqual(got_log, log)
        self.assertEqual(pcrs["sha256"], regs)
        # PCR 0 from zero, PCRs 17-22 from all ones.
        want = hashlib.sha256(b"\0" * 32 + hashlib.sha256(b"firmware").digest()).digest()
        self.assertEqual(regs[0], want)
        self.assertEqual(t.replay([{"pcr": 17, "type": 1, "digests": {t.SHA256: b"\1" * 32}, "data": b""}],
                                  t.SHA256)[17],
                         hashlib.sha256(b"\xff" * 32 + b"\1" * 32).digest())

    def test_compare_works(self):
        events, log = boot()
        _, parsed = t.parse_log(log)
        vtpm, tdx = predictions(events)
        self.assertEqual(t.compare(parsed, vtpm, tdx, hashlib.sha384(KERNEL).hexdigest()), [])

    def test_changed_cmdline_or_missing_event_rejects(self):
        events, log = boot()
        _, parsed = t.parse_log(log)
        # The predictions of a UKI with another command line: its contents event and
        # the kernel's load options differ, each named.
        other = [(p, e, w, (m.replace(b"panic=-1", b"panic=-2") if w in (".cmdline contents",) else
                            "console=ttyS0 panic=-2\0".encode("utf-16-le") if w == "kernel load options" else m), d)
                 for p, e, w, m, d in events]
        vtpm, tdx = predictions(other)
        diffs = t.compare(parsed, vtpm, tdx, None)
        self.assertTrue(any("(.cmdline contents)" in d for d in diffs), diffs)
        self.assertTrue(any("(kernel load options)" in d for d in diffs), diffs)
        self.assertTrue(any(d.startswith("PCR 11 replays") for d in diffs), diffs)
        # A predicted event the boot does not have (as .sbat was): PCR 11's count differs.
        vtpm, tdx = predictions(events[:1] + [(11, t.EV_IPL, ".sbat name", b".sbat\0", b"")] + events[1:])
        diffs = t.compare(parsed, vtpm, tdx, None)
        self.assertTrue(any(d.startswith("PCR 11: the boot has 6 events, predicted 7") for d in diffs), diffs)
        # The kernel's LoadImage event missing from PCR 4.
        diffs = t.compare([e for e in parsed if e["digests"][t.SHA256] != hashlib.sha256(KERNEL).digest()],
                          *predictions(events), hashlib.sha384(KERNEL).hexdigest())
        self.assertTrue(any("second application event" in d for d in diffs), diffs)

    def test_truncated_log_rejects(self):
        _, log = boot()
        with self.assertRaises(t.CheckError):
            t.parse_log(log[:-5])
        with self.assertRaises(t.CheckError):
            t.console_output("no TPM here\n")


if __name__ == "__main__":
    unittest.main()
