//! Zip archives written byte by byte, for the attacks a well-behaved zip
//! writer refuses to produce (lying sizes, overlapping entries).

#![allow(dead_code)] // each test file uses part of it

pub fn u16le(v: usize) -> [u8; 2] {
    u16::try_from(v).expect("fits u16").to_le_bytes()
}

pub fn u32le(v: usize) -> [u8; 4] {
    u32::try_from(v).expect("fits u32").to_le_bytes()
}

/// A local file header (no data descriptor, no extra field).
pub fn local_header(name: &str, method: u16, compressed: usize, uncompressed: usize) -> Vec<u8> {
    let mut h = b"PK\x03\x04".to_vec();
    h.extend_from_slice(&[20, 0, 0, 0]); // version needed, flags
    h.extend_from_slice(&method.to_le_bytes());
    h.extend_from_slice(&[0; 4]); // time, date
    h.extend_from_slice(&[0; 4]); // crc-32 (not checked by the inspector)
    h.extend_from_slice(&u32le(compressed));
    h.extend_from_slice(&u32le(uncompressed));
    h.extend_from_slice(&u16le(name.len()));
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(name.as_bytes());
    h
}

/// A central directory header pointing at the local header at `offset`.
pub fn central_header(
    name: &str,
    method: u16,
    compressed: usize,
    uncompressed: usize,
    offset: usize,
) -> Vec<u8> {
    let mut h = b"PK\x01\x02".to_vec();
    h.extend_from_slice(&[20, 3, 20, 0, 0, 0]); // made by (Unix), needed, flags
    h.extend_from_slice(&method.to_le_bytes());
    h.extend_from_slice(&[0; 8]); // time, date, crc-32
    h.extend_from_slice(&u32le(compressed));
    h.extend_from_slice(&u32le(uncompressed));
    h.extend_from_slice(&u16le(name.len()));
    h.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attributes
    h.extend_from_slice(&(0o100_644u32 << 16).to_le_bytes()); // a regular file
    h.extend_from_slice(&u32le(offset));
    h.extend_from_slice(name.as_bytes());
    h
}

pub fn end_record(entries: usize, directory_size: usize, directory_offset: usize) -> Vec<u8> {
    let mut e = b"PK\x05\x06\0\0\0\0".to_vec();
    e.extend_from_slice(&u16le(entries));
    e.extend_from_slice(&u16le(entries));
    e.extend_from_slice(&u32le(directory_size));
    e.extend_from_slice(&u32le(directory_offset));
    e.extend_from_slice(&[0, 0]);
    e
}

/// A well-formed archive of deflated entries `(name, stream, declared size)`.
pub fn raw_zip(entries: &[(&str, &[u8], usize)]) -> Vec<u8> {
    let mut zip = Vec::new();
    let mut directory = Vec::new();
    for (name, stream, declared) in entries {
        let offset = zip.len();
        zip.extend_from_slice(&local_header(name, 8, stream.len(), *declared));
        zip.extend_from_slice(stream);
        directory.extend_from_slice(&central_header(name, 8, stream.len(), *declared, offset));
    }
    let directory_offset = zip.len();
    zip.extend_from_slice(&directory);
    zip.extend_from_slice(&end_record(
        entries.len(),
        directory.len(),
        directory_offset,
    ));
    zip
}

/// A raw deflate stream of zero bytes, written with the fixed Huffman code
/// (one literal, then `<258, 1>` matches: 13 bits per 258 bytes, ~159:1;
/// zlib's dynamic codes reach ~1000:1). Returns the stream and its exact
/// inflated size (`len` rounded down to `1 + 258k`).
pub fn deflate_zeros(len: usize) -> (Vec<u8>, usize) {
    let matches = len.saturating_sub(1) / 258;
    let mut bits = BitWriter::default();
    bits.push(1, 1); // BFINAL
    bits.push(1, 2); // BTYPE = 01, fixed Huffman
    bits.push_code(0x30, 8); // literal 0
    for _ in 0..matches {
        bits.push_code(0xC5, 8); // length code 285 (258 bytes)
        bits.push_code(0, 5); // distance code 0 (distance 1)
    }
    bits.push_code(0, 7); // end of block (256)
    (bits.finish(), 1 + matches * 258)
}

#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    current: u8,
    used: u8,
}

impl BitWriter {
    /// `count` bits of `value`, least significant first (header fields).
    fn push(&mut self, value: u32, count: u8) {
        for i in 0..count {
            self.bit((value >> i) & 1 == 1);
        }
    }

    /// A Huffman code of `count` bits, most significant first.
    fn push_code(&mut self, code: u32, count: u8) {
        for i in (0..count).rev() {
            self.bit((code >> i) & 1 == 1);
        }
    }

    fn bit(&mut self, set: bool) {
        if set {
            self.current |= 1 << self.used;
        }
        self.used += 1;
        if self.used == 8 {
            self.out.push(self.current);
            self.current = 0;
            self.used = 0;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.used > 0 {
            self.out.push(self.current);
        }
        self.out
    }
}
