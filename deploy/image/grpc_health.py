#!/usr/bin/env python3
"""One gRPC health check (grpc.health.v1.Health/Check) over TLS, standard library only.

    python3 grpc_health.py HOST PORT [SERVICE] [--timeout=S]

Exit 0 when the server answers SERVING for SERVICE (default sigil.v1.JobService),
1 otherwise (the answer or the failure on stderr). A minimal HTTP/2 client: the
connection preface, SETTINGS, one request stream (HPACK literals without indexing),
frames read until the response message. The agent serves TLS with a self-signed
certificate for its attested key (tls.attested): the certificate is not checked here,
only that the agent answers; buyers check the key against the agent's evidence.
"""

from __future__ import annotations

import socket
import ssl
import struct
import sys

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def frame(ftype: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def hpack_int(value: int, prefix_bits: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([value])
    out, value = bytearray([limit]), value - limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name: str, value: str) -> bytes:
    n, v = name.encode(), value.encode()
    return b"\x00" + hpack_int(len(n), 7) + n + hpack_int(len(v), 7) + v


def read_exact(sock: ssl.SSLSocket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the server")
        buf.extend(chunk)
    return bytes(buf)


def check(host: str, port: int, service: str, timeout: float) -> str:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            if s.selected_alpn_protocol() != "h2":
                raise ConnectionError(f"ALPN chose {s.selected_alpn_protocol()!r}, not h2")
            headers = b"".join(hpack_literal(k, v) for k, v in (
                (":method", "POST"), (":scheme", "https"),
                (":path", "/grpc.health.v1.Health/Check"), (":authority", f"{host}:{port}"),
                ("content-type", "application/grpc"), ("te", "trailers"),
            ))
            svc = service.encode()
            msg = (b"\x0a" + hpack_int(len(svc), 8) + svc) if svc else b""  # field 1, string
            body = b"\x00" + struct.pack(">I", len(msg)) + msg
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(SETTINGS, 0, 0, b"")
                      + frame(HEADERS, END_HEADERS, 1, headers) + frame(DATA, END_STREAM, 1, body))
            data = bytearray()
            while True:
                head = read_exact(s, 9)
                length = int.from_bytes(head[:3], "big")
                ftype, flags = head[3], head[4]
                stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
                payload = read_exact(s, length)
                if ftype == SETTINGS and not flags & ACK:
                    s.sendall(frame(SETTINGS, ACK, 0, b""))
                elif ftype == PING and not flags & ACK:
                    s.sendall(frame(PING, ACK, 0, payload))
                elif ftype == GOAWAY:
                    raise ConnectionError("the server sent GOAWAY")
                elif ftype == RST_STREAM and stream == 1:
                    raise ConnectionError(f"the server reset the stream (code {payload.hex()})")
                elif ftype == DATA and stream == 1:
                    data.extend(payload)
                    if len(data) >= 5 and len(data) >= 5 + int.from_bytes(data[1:5], "big"):
                        break
                elif ftype == HEADERS and stream == 1 and flags & END_STREAM:
                    raise ConnectionError("the call ended without a response message (see grpc-status)")
    msg = bytes(data[5:5 + int.from_bytes(data[1:5], "big")])
    # HealthCheckResponse { status = 1 (enum) }: field 1 varint; absent means UNKNOWN (0).
    status = msg[1] if len(msg) >= 2 and msg[0] == 0x08 else 0
    return STATUS.get(status, f"status {status}")


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--timeout")]
    timeout = 5.0
    for a in sys.argv[1:]:
        if a.startswith("--timeout="):
            timeout = float(a.split("=", 1)[1])
    if len(args) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    service = args[2] if len(args) == 3 else "sigil.v1.JobService"
    try:
        status = check(args[0], int(args[1]), service, timeout)
    except (OSError, ConnectionError, ValueError) as e:
        print(f"grpc_health: {args[0]}:{args[1]}: {e}", file=sys.stderr)
        return 1
    print(f"{service}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
