#!/usr/bin/env python3
"""Writes tests/fuzz/seeds/: one valid record per message type, and
streams (8 chunk-size bytes, then v2 frames) for the framer. A frame is
L | B | header "ciphertext" | bulk; the fuzz target takes the ciphertext to
be 17 filler bytes (CR_STREAM_ABYTES) then the plaintext header."""
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")
FRAGID = bytes(range(1, 34))
HASH = bytes(range(0xa0, 0xc0))
ABYTES = 17
BULK_AT = {0x01: 9 + 33 + 32, 0x82: 9}    # PUT, GET_OK: data offset


def rec(t, reqid, payload=b""):
    return struct.pack(">BQ", t, reqid) + payload


def head(seq, blob):
    """A head as crypto/head.c lays it out (the signature is not checked
    by the codec, so any 64 bytes do)."""
    return (b"PFSHEAD1" + bytes(range(32, 64)) + struct.pack(">QQI", seq,
            1700000000 + seq, len(blob)) + blob + bytes(range(64)))


def head_entries(*heads):
    return b"".join(struct.pack(">I", len(h)) + h for h in heads)


RECORDS = {
    "put": rec(0x01, 1, FRAGID + HASH + b"fragment bytes"),
    "get": rec(0x02, 2, FRAGID),
    "get_range": rec(0x02, 2, FRAGID + b"\x01" + struct.pack(">II", 80, 65552)),
    "del": rec(0x03, 3, FRAGID),
    "list": rec(0x04, 4, bytes(33) + struct.pack(">I", 1000)),
    "ping": rec(0x05, 5),
    "audit": rec(0x06, 7, FRAGID + bytes(range(100, 132))),
    "put_ok": rec(0x81, 1),
    "get_ok": rec(0x82, 2, b"fragment bytes"),
    "del_ok": rec(0x83, 3),
    "list_ok": rec(0x84, 4, struct.pack(">I", 2) + FRAGID +
                   struct.pack(">Q", 14) + bytes(32) + b"\x07" +
                   struct.pack(">Q", 1 << 20)),
    "list_ok_empty": rec(0x84, 4, struct.pack(">I", 0)),
    "pong": rec(0x85, 5, struct.pack(">QQQQ", 14, 1, 1 << 30, 1 << 31)),
    "audit_ok": rec(0x86, 7, bytes(range(200, 232))),
    "head_put": rec(0x07, 8, head(3, b"sealed index records")),
    "head_list": rec(0x08, 9, struct.pack(">I", 16)),
    "head_put_ok": rec(0x87, 8),
    "reserve": rec(0x09, 10, struct.pack(">II", 1 << 20, 16)),
    "reserve_bind": rec(0x09, 11, struct.pack(">II", 1 << 20, 16) + b"\x01" +
                        bytes(range(32, 64)) + bytes(range(128))),
    "reserve_ok": rec(0x89, 10, struct.pack(">IQ", 12, 200 << 20)),
    "head_list_ok": rec(0x88, 9, struct.pack(">I", 2) +
                        head_entries(head(3, b"v3"), head(2, b""))),
    "head_list_ok_empty": rec(0x88, 9, struct.pack(">I", 0)),
    "dialback": rec(0x0b, 12, b"\x01" + struct.pack(">H", 7070)),
    "dialback_ok": rec(0x8b, 12, struct.pack(">I", 111)),
    "relay_reserve": rec(0x0c, 13, b"\x01"),
    "relay_reserve_ok": rec(0x8c, 13, struct.pack(">II", 20, 16)),
    "relay_incoming": rec(0x0d, 0, b"\x01" + bytes(range(16))),
    "punch": rec(0x0e, 14, b"\x01" + struct.pack(">H", 40001)),
    "punch_ok": rec(0x8e, 14, b"\x01" + struct.pack(">H", 7070)),
    "err": rec(0xff, 6, struct.pack(">I", 122) + "quota exceeded ✓".encode()),
}


def frame(r, bulk=True):
    """Fragment bytes as bulk, as net_sess_send does (bulk=False: all in
    the header, which receivers also accept)."""
    cut = BULK_AT.get(r[0], len(r)) if bulk else len(r)
    hdr, blk = r[:cut], r[cut:]
    return (struct.pack(">II", ABYTES + len(hdr), len(blk)) +
            bytes([0xee]) * ABYTES + hdr + blk)


def main():
    os.makedirs(HERE, exist_ok=True)
    for name, r in RECORDS.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(r)
    all_frames = b"".join(frame(r) for r in RECORDS.values())
    with open(os.path.join(HERE, "stream_small_chunks"), "wb") as f:
        f.write(bytes([1, 3, 7, 2, 5, 11, 4, 1]) + all_frames)
    with open(os.path.join(HERE, "stream_whole"), "wb") as f:
        f.write(bytes(8) + all_frames)
    # Refused: bulk on PING, the split off the data offset, L + B too big.
    bad = (frame(rec(0x05, 5)) + struct.pack(">II", ABYTES + 9, 3) +
           bytes(ABYTES) + rec(0x05, 5) + b"xyz")
    with open(os.path.join(HERE, "stream_bulk_on_ping"), "wb") as f:
        f.write(bytes(8) + bad)
    put = RECORDS["put"]
    with open(os.path.join(HERE, "stream_bad_split"), "wb") as f:
        f.write(bytes(8) + struct.pack(">II", ABYTES + 70, len(put) - 70) +
                bytes(ABYTES) + put)
    with open(os.path.join(HERE, "stream_too_big"), "wb") as f:
        f.write(bytes(8) + struct.pack(">II", ABYTES + 74,
                                       16 * 1024 * 1024 + 4096) +
                bytes(ABYTES) + put[:74])
    with open(os.path.join(HERE, "stream_no_bulk"), "wb") as f:
        f.write(bytes([200, 9, 1, 0, 3, 5, 1, 2]) +
                frame(put, False) + frame(RECORDS["get_ok"], False))


if __name__ == "__main__":
    main()
