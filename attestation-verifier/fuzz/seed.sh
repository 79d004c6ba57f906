#!/usr/bin/env bash
# Builds the seed corpora of every fuzz target from the shared vectors into corpus/<target>/
# (git-ignored; vector bytes are never committed). Idempotent: seeds are named by their
# SHA-1, so a rerun adds nothing twice. Needs python3; openssl for the OCSP seeds.
#
#   attestation-verifier/fuzz/seed.sh            # vectors: ../shared/vectors beside the repo
#   SIGIL_VECTORS=/path/to/vectors seed.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
vectors="${SIGIL_VECTORS:-$repo/../shared/vectors}"
[ -d "$vectors" ] || { echo "seed.sh: no vectors at $vectors (set SIGIL_VECTORS)" >&2; exit 2; }
corpus="$here/corpus"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# Two OCSP responses (good, revoked) from a throwaway CA: no OCSP response ships with the
# vectors. Skipped without openssl.
ocsp_seeds() {
    command -v openssl >/dev/null || return 0
    local d="$1"
    (
        cd "$d"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout ca.key \
            -out ca.pem -subj /CN=ca -days 3650 -addext basicConstraints=critical,CA:true 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout leaf.key \
            -out leaf.csr -subj /CN=leaf 2>/dev/null
        openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial 7 -days 3650 \
            -out leaf.pem 2>/dev/null
        for status in V R; do
            if [ "$status" = R ]; then rev=251231000000Z; else rev=; fi
            printf '%s\t351231000000Z\t%s\t07\tunknown\t/CN=leaf\n' "$status" "$rev" > index.txt
            openssl ocsp -issuer ca.pem -cert leaf.pem -reqout req.der -no_nonce 2>/dev/null
            openssl ocsp -index index.txt -rsigner ca.pem -rkey ca.key -CA ca.pem -reqin req.der \
                -respout "$status.ocsp" -ndays 30 2>/dev/null
        done
    ) || true
}

ocsp_seeds "$scratch"
python3 - "$vectors" "$corpus" "$repo" "$scratch" <<'PY'
import base64, glob, hashlib, json, os, re, sys

vectors, corpus, repo, scratch = sys.argv[1:5]
SEP = b"\xff\x00\xff\x00"  # attestation_verifier_fuzz::split's separator
count = {}

def seed(target, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)
    count[target] = count.get(target, 0) + 1

def read(p):
    with open(p, "rb") as f:
        return f.read()

def pem_blocks(data):
    return [base64.b64decode(b"".join(m.split()))
            for m in re.findall(rb"-----BEGIN [A-Z ]+-----(.*?)-----END", data, re.S)]

def der_of(p):
    data = read(p)
    return pem_blocks(data)[0] if data.startswith(b"-----BEGIN") else data

def compact(n):
    if n < 1 << 6: return bytes([n << 2])
    if n < 1 << 14: return (n << 2 | 1).to_bytes(2, "little")
    if n < 1 << 30: return (n << 2 | 2).to_bytes(4, "little")
    b = n.to_bytes((n.bit_length() + 7) // 8, "little")
    return bytes([(len(b) - 4) << 2 | 3]) + b

def vec(b): return compact(len(b)) + b
def opt(b): return b"\x00" if b is None else b"\x01" + vec(b)
def vecs(items): return compact(len(items)) + b"".join(vec(i) for i in items)

def bundle(version, tee, cpu, gpus=(), rims=(), ocsp=(), crl=None, log=None, agent=()):
    out = b"SGEB" + bytes([version, tee]) + bytes(range(32)) + bytes(32) + cpu
    out += compact(len(gpus)) + b"".join(gpus)
    if version >= 2: out += vecs(list(rims)) + vecs(list(ocsp))
    if version >= 3: out += opt(crl)
    if version >= 4: out += b"\x00"  # no sealing key
    if version >= 5:  # measured boot: event log, agent events (kind, digest), no TPM quote
        out += opt(log) + compact(len(agent)) + b"".join(bytes([k]) + d for k, d in agent) + b"\x00"
    return out

def g(kind):
    return sorted(glob.glob(os.path.join(vectors, kind)))

snp_cpu, tdx_cpu, gpu_ev = [], [], []
# SEV-SNP reports, certificates, CRLs
for case in g("snp/*"):
    if os.path.exists(f"{case}/report.bin"):
        report = read(f"{case}/report.bin")
        seed("snp_report", report)
        seed("crypto_differential", b"\x07" + report)
        vek = next((der_of(f"{case}/{n}") for n in ("vcek.der", "vlek.der") if os.path.exists(f"{case}/{n}")), b"")
        inter = next((der_of(f"{case}/{n}") for n in ("ask.pem", "asvk.pem") if os.path.exists(f"{case}/{n}")), None)
        ark = der_of(f"{case}/ark.pem") if os.path.exists(f"{case}/ark.pem") else None
        snp_cpu.append(b"\x01" + vec(report) + vec(vek) + opt(inter) + opt(ark))
        seed("x509_chain", SEP.join(x for x in (vek, inter, ark) if x))
    for p in glob.glob(f"{case}/*crl*"):
        seed("tdx_collateral", b"\x02" + der_of(p))
# TDX quotes and collateral
for case in g("tdx/*"):
    if os.path.exists(f"{case}/quote.bin"):
        quote = read(f"{case}/quote.bin")
        seed("tdx_quote", quote)
        seed("tdx_quote_differential", quote)
        cj = read(f"{case}/collateral.json") if os.path.exists(f"{case}/collateral.json") else None
        tdx_cpu.append(b"\x02" + vec(quote) + opt(cj))
        chain = pem_blocks(quote)
        if chain: seed("x509_chain", SEP.join(chain))
    for name, sel, key in (("tcb_info.json", 0, "tcbInfo"), ("qe_identity.json", 1, "enclaveIdentity")):
        if os.path.exists(f"{case}/{name}"):
            j = json.loads(read(f"{case}/{name}"))
            seed("tdx_collateral", bytes([sel]) + json.dumps(j.get(key, j)).encode())
    for name in ("pck_crl.der", "root_ca_crl.der"):
        if os.path.exists(f"{case}/{name}"):
            seed("tdx_collateral", b"\x02" + der_of(f"{case}/{name}"))
    if os.path.exists(f"{case}/collateral.json"):
        seed("tdx_collateral", b"\x03" + read(f"{case}/collateral.json"))
        seed("tdx_collateral", b"\x04" + read(f"{case}/collateral.json"))
    for p in glob.glob(f"{case}/*chain.pem"):
        seed("x509_chain", SEP.join(pem_blocks(read(p))))
# NVIDIA GPU reports, chains, RIMs
for case in g("nvgpu/*"):
    if os.path.exists(f"{case}/report.bin"):
        report = read(f"{case}/report.bin")
        seed("nvgpu_report", report)
        chain_pem = read(f"{case}/cert_chain.pem") if os.path.exists(f"{case}/cert_chain.pem") else b""
        seed("x509_chain", SEP.join(pem_blocks(chain_pem)))
        nonce = bytes.fromhex(read(f"{case}/nonce.hex").decode().strip()) if os.path.exists(f"{case}/nonce.hex") else bytes(32)
        gpu_ev.append(vec(report) + vec(chain_pem) + nonce[:32].ljust(32, b"\0") + vec(b"GPU-0"))
        blocks = pem_blocks(chain_pem)
        if blocks:
            seed("crypto_differential", b"\x02" + SEP.join([b"", report[:-96], report[-96:]]))
rims = []
for p in g("nvgpu-extra/rims-nvtrust/*") + g("nvgpu-extra/nvat/*.xml"):
    rims.append(read(p))
    seed("rim_xml", read(p))
# OCSP responses (none are published with the vectors: made here with openssl)
for p in glob.glob(os.path.join(scratch, "*.ocsp")):
    seed("ocsp_response", read(p))
# Evidence bundles (SCALE, docs/evidence-bundle.md) of the real evidence, every version
for cpu in snp_cpu[:4] + tdx_cpu[:4] + [b"\x03" + vec(b"simulated report")]:
    tee = {1: 1, 2: 2, 3: 3}[cpu[0]]
    for version in (1, 2, 3, 4, 5):
        seed("evidence_bundle", bundle(version, tee, cpu))
    seed("evidence_bundle", bundle(3, tee, cpu, gpu_ev[:2], rims[:2], [], None))
# TDX event logs (CCEL and dstack JSON), and version-5 bundles carrying them
for case in g("measured/tdx-eventlog/*"):
    for name in ("ccel.bin", "eventlog.json"):
        if os.path.exists(f"{case}/{name}"):
            log = read(f"{case}/{name}")
            seed("event_log", log)
            if tdx_cpu:
                seed("evidence_bundle", bundle(5, 2, tdx_cpu[0], log=log,
                                               agent=[(1, bytes([0xA1]) * 48), (2, bytes([0xC1]) * 48)]))
# TPM event logs (none among the vectors: made here, as tests/azure_vtpm_eventlog.rs makes
# them): a SHA-1-format Spec ID header listing SHA-1 and SHA-256, then TCG_PCR_EVENT2 records.
def tpm_log(events):
    import hashlib
    spec = (b"Spec ID Event03\0" + (0).to_bytes(4, "little") + bytes([0, 2, 0, 2])
            + (2).to_bytes(4, "little") + (4).to_bytes(2, "little") + (20).to_bytes(2, "little")
            + (11).to_bytes(2, "little") + (32).to_bytes(2, "little") + b"\0")
    out = (0).to_bytes(4, "little") + (3).to_bytes(4, "little") + bytes(20) + len(spec).to_bytes(4, "little") + spec
    for pcr, ty, data in events:
        d = bytes(32) if ty == 3 else hashlib.sha256(data).digest()
        out += (pcr.to_bytes(4, "little") + ty.to_bytes(4, "little") + (2).to_bytes(4, "little")
                + (4).to_bytes(2, "little") + d[:20] + (11).to_bytes(2, "little") + d
                + len(data).to_bytes(4, "little") + data)
    return out
boot = [(0, 3, b"StartupLocality\0\3"), (0, 1, b"firmware volume")]
boot += [(pcr, 4, bytes(4)) for pcr in range(8)]
boot += [(4, 0x80000003, b"\\EFI\\BOOT\\BOOTX64.EFI"), (8, 0xd, b"kernel_cmdline: console=ttyS0\0")]
seed("tpm_event_log", tpm_log(boot))
seed("tpm_event_log", tpm_log(boot[:1]))
seed("tpm_event_log", tpm_log([(17, 1, b"drtm"), (23, 0x80000001, bytes(40))]))
# Receipts (SignedReceipt = body Vec<u8> | signature [64]); with a bundle after the separator
body = (bytes([1]) + bytes(32) + bytes(32) + bytes(range(32)) + bytes([3]) + bytes(32)
        + (2).to_bytes(4, "little") + (1).to_bytes(8, "little") + (2).to_bytes(8, "little")
        + (0).to_bytes(4, "little") + bytes(40) + bytes([1, 1]) + bytes(32))
signed = vec(body) + bytes(64)
seed("receipt", signed)
if snp_cpu:
    seed("receipt", signed + SEP + bundle(3, 1, snp_cpu[0]))
# GCE launch endorsements (none among the vectors): golden measurements in Google's
# endorsement.proto encoding, which the target signs with its own test key (the signing
# certificate is put in by the target); and one whole VMLaunchEndorsement around one.
def pb_key(field, wire): return bytes([(field << 3) | wire])
def pb_varint(n):
    out = b""
    while True:
        b = n & 0x7f; n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n: return out
def pb_ld(field, data): return pb_key(field, 2) + pb_varint(len(data)) + data
def pb_int(field, n): return pb_key(field, 0) + pb_varint(n)
snp_values = pb_int(1, 3) + b"".join(
    pb_ld(2, pb_int(1, n) + pb_ld(2, bytes([n]) * 48)) for n in (1, 2, 4, 8)) \
    + pb_ld(3, bytes(16)) + pb_ld(4, bytes([1]) * 16) + pb_int(5, 0x30000)
tdx_values = pb_int(1, 2) + pb_ld(2, pb_int(1, 16) + pb_ld(3, bytes([0xa1]) * 48)) \
    + pb_ld(2, pb_int(1, 32) + pb_int(2, 1) + pb_ld(3, bytes([0xa2]) * 48))
golden = (pb_ld(1, pb_int(1, 1735689600)) + pb_int(2, 700123456) + pb_ld(3, b"c0117")
          + pb_ld(5, bytes([5]) * 48) + pb_ld(7, snp_values) + pb_ld(8, tdx_values))
seed("gce_endorsement", golden)
seed("gce_endorsement", pb_ld(1, pb_int(1, 1600000000)) + pb_ld(7, snp_values))
seed("gce_endorsement", pb_ld(8, tdx_values))
seed("gce_endorsement", pb_ld(1, golden) + pb_ld(2, bytes(256)))
# Policies: the TOML blocks of the docs
for p in glob.glob(os.path.join(repo, "docs/*.md")):
    for block in re.findall(r"```toml\n(.*?)```", read(p).decode(), re.S):
        seed("policy_toml", block.encode())
seed("policy_toml", b"")
for t, n in sorted(count.items()):
    print(f"{t}: {n} seeds")
PY
