//! Compression codecs for the records section of a Kafka `RecordBatch` v2.
//!
//! A `RecordBatch` stores its records either as is or compressed as one unit; the codec is named
//! by bits 0-2 of the batch attributes. Whatever we write here is read by real Kafka brokers
//! and clients, and whatever they write is read by us, so every codec follows the exact wire
//! framing Kafka's Java client uses:
//!
//! | codec  | id | framing                                                                    |
//! |--------|----|----------------------------------------------------------------------------|
//! | none   | 0  | the records bytes themselves                                               |
//! | gzip   | 1  | one RFC 1952 gzip member (deflate level 6, the JDK default)                |
//! | snappy | 2  | snappy-java's "xerial" stream: a 16-byte header, then length-prefixed raw  |
//! |        |    | snappy blocks of at most 32 KiB of input each                              |
//! | lz4    | 3  | one LZ4 frame: independent 64 KiB blocks, no checksums, no content size    |
//! | zstd   | 4  | one standard zstd frame (level 3)                                          |
//!
//! Decoding is deliberately more liberal than encoding, because other producers make other
//! valid choices: several concatenated gzip members, zstd frames or LZ4 frames; LZ4 frames with
//! checksums, a content size or linked blocks; snappy as one bare raw block (snappy-java's own
//! fallback when the xerial header is absent).
//!
//! # Safety against hostile input
//!
//! Decoders see bytes from disk and from the network. Every decoder therefore
//! - returns `Ok` or `Err` for any input and never panics;
//! - stops with an error once the output would exceed the caller's `max_output`, so a tiny
//!   "decompression bomb" cannot make us materialise gigabytes. Output buffers grow with the data
//!   actually decoded (at most about twice `max_output` in capacity), never from a size an
//!   attacker declares;
//! - rejects truncated input wherever the format makes truncation visible (which is everywhere
//!   except at a xerial chunk boundary: that framing has no end marker).
//!
//! The codec libraries also keep working memory whose size the frame header sets, not
//! `max_output`. Both are fixed ceilings rather than multiples of anything an attacker controls,
//! so neither can serve as a bomb:
//! - `lz4_flex` fills a buffer of the frame's declared maximum block size for every compressed
//!   block: 64 KiB for Kafka's own frames, at most 4 MiB (some Go clients use 4 MiB blocks);
//! - libzstd reserves the frame's declared window, up to 128 MiB (its default limit, the same
//!   one Kafka's Java consumer runs with; a lower limit would reject frames that Kafka clients
//!   legitimately write with large windows), but touches it only as data is really decoded.

use std::fmt;
use std::io::Read;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Compression codec of a batch's records section (attribute bits 0-2).
///
/// Parses from and prints as Kafka's `compression.type` names (`none`, `gzip`, `snappy`, `lz4`,
/// `zstd`); serde uses the same lowercase names.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// No compression (codec id 0): the records are stored as they are.
    #[default]
    None,
    /// gzip (codec id 1): an RFC 1952 stream. Needs the `gzip` cargo feature.
    Gzip,
    /// Snappy (codec id 2) in snappy-java's xerial framing. Needs the `snappy` cargo feature.
    Snappy,
    /// LZ4 (codec id 3) in the LZ4 frame format with independent blocks.
    Lz4,
    /// Zstandard (codec id 4).
    Zstd,
}

impl Compression {
    /// Every codec, in codec-id order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec id stored in bits 0-2 of the batch attributes.
    pub const fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec for an attributes codec id.
    ///
    /// Ids 5 to 7 fit in the three attribute bits but name no codec; they (and anything larger)
    /// fail with [`Error::UnsupportedCompression`]. A codec that is known but compiled out is
    /// still returned here: see [`Compression::is_available`].
    pub fn from_id(id: u8) -> Result<Self> {
        match id {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            _ => Err(Error::UnsupportedCompression {
                codec: id,
                reason: "unknown codec id",
            }),
        }
    }

    /// Kafka's name for the codec, as used by the `compression.type` setting.
    pub const fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Whether this build can compress and decompress with the codec.
    ///
    /// gzip and snappy are behind the cargo features of the same names (on by default); the
    /// other codecs are always built in.
    pub const fn is_available(self) -> bool {
        match self {
            Compression::None | Compression::Lz4 | Compression::Zstd => true,
            Compression::Gzip => cfg!(feature = "gzip"),
            Compression::Snappy => cfg!(feature = "snappy"),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` rather than `write_str` so that width and alignment flags work in tables.
        f.pad(self.name())
    }
}

impl FromStr for Compression {
    type Err = Error;

    /// Parses a codec name, ignoring ASCII case and surrounding whitespace. `uncompressed` is
    /// accepted for [`Compression::None`], as Kafka's topic-level `compression.type` spells it.
    ///
    /// Parsing does not check [`Compression::is_available`]: a configuration naming a codec
    /// that was compiled out is well-formed, and fails only when the codec is used.
    fn from_str(s: &str) -> Result<Self> {
        let name = s.trim();
        if name.eq_ignore_ascii_case("uncompressed") {
            return Ok(Compression::None);
        }
        Compression::ALL
            .into_iter()
            .find(|codec| name.eq_ignore_ascii_case(codec.name()))
            .ok_or_else(|| {
                Error::invalid_config(
                    "compression",
                    format!(
                        "unknown codec '{s}': expected one of none, gzip, snappy, lz4, zstd \
                         (or uncompressed)"
                    ),
                )
            })
    }
}

/// Appends the compressed form of `input` to `out`.
///
/// Fails with [`Error::UnsupportedCompression`] if the codec was compiled out of this build.
pub(crate) fn compress(codec: Compression, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    match codec {
        Compression::None => {
            out.extend_from_slice(input);
            Ok(())
        }
        #[cfg(feature = "gzip")]
        Compression::Gzip => gzip::compress(input, out),
        #[cfg(feature = "snappy")]
        Compression::Snappy => snappy::compress(input, out),
        Compression::Lz4 => lz4::compress(input, out),
        Compression::Zstd => zstd_codec::compress(input, out),
        #[cfg(not(all(feature = "gzip", feature = "snappy")))]
        compiled_out => Err(not_built(compiled_out)),
    }
}

/// Decompresses `input`; fails with [`Error::InvalidBatch`] if the output would exceed
/// `max_output` bytes (decompression-bomb guard) or the input is malformed. Never panics, on ANY
/// input.
///
/// Fails with [`Error::UnsupportedCompression`] if the codec was compiled out of this build.
pub(crate) fn decompress(codec: Compression, input: &[u8], max_output: usize) -> Result<Vec<u8>> {
    if !codec.is_available() {
        return Err(not_built(codec));
    }
    // Our encoders never produce zero bytes (even empty input gets a header), and neither do
    // Kafka's; several decoders would read an empty input as an empty stream and so hide a
    // truncation, so refuse it up front for every compressing codec alike.
    if input.is_empty() && codec != Compression::None {
        return Err(malformed(codec, "the compressed data is empty"));
    }
    match codec {
        Compression::None => {
            if input.len() > max_output {
                return Err(too_large(codec, max_output));
            }
            Ok(input.to_vec())
        }
        #[cfg(feature = "gzip")]
        Compression::Gzip => gzip::decompress(input, max_output),
        #[cfg(feature = "snappy")]
        Compression::Snappy => snappy::decompress(input, max_output),
        Compression::Lz4 => lz4::decompress(input, max_output),
        Compression::Zstd => zstd_codec::decompress(input, max_output),
        #[cfg(not(all(feature = "gzip", feature = "snappy")))]
        compiled_out => Err(not_built(compiled_out)),
    }
}

/// The error for a codec whose cargo feature is off.
fn not_built(codec: Compression) -> Error {
    let reason = match codec {
        Compression::Gzip => "topiclog was built without the `gzip` feature",
        Compression::Snappy => "topiclog was built without the `snappy` feature",
        // Unreachable today: every other codec is always compiled in.
        _ => "this build of topiclog lacks the codec",
    };
    Error::UnsupportedCompression {
        codec: codec.id(),
        reason,
    }
}

/// The error for input the codec cannot decode.
fn malformed(codec: Compression, detail: impl fmt::Display) -> Error {
    Error::invalid_batch(format!("malformed {codec}-compressed records: {detail}"))
}

/// The error for output that would exceed the caller's limit.
fn too_large(codec: Compression, max_output: usize) -> Error {
    Error::invalid_batch(format!(
        "{codec}-compressed records decompress to more than the limit of {max_output} bytes"
    ))
}

/// The error for a failure while compressing. Writing into a `Vec` cannot fail, so this only
/// reports a codec library's own refusal (such as an allocation failure inside libzstd).
fn compress_failed(codec: Compression, detail: impl fmt::Display) -> Error {
    Error::invalid_batch(format!("{codec} compression failed: {detail}"))
}

/// Drains a streaming decoder into a new buffer, failing once it yields more than `max_output`
/// bytes.
fn read_bounded(codec: Compression, decoder: impl Read, max_output: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    read_bounded_into(codec, decoder, max_output, &mut out)?;
    Ok(out)
}

/// Appends what a streaming decoder yields to `out`, failing once `out` would hold more than
/// `max_output` bytes.
///
/// Reading through `take` means the decoder is never asked for more than one byte past the
/// limit, so a bomb costs at most `max_output + 1` bytes of output (plus the `Vec`'s growth
/// slack). When the output fits, the decoder is read to its end, which is when the stream
/// decoders check trailers and checksums.
fn read_bounded_into(
    codec: Compression,
    decoder: impl Read,
    max_output: usize,
    out: &mut Vec<u8>,
) -> Result<()> {
    let budget = max_output.saturating_sub(out.len());
    let limit = u64::try_from(budget).unwrap_or(u64::MAX).saturating_add(1);
    decoder
        .take(limit)
        .read_to_end(out)
        .map_err(|e| malformed(codec, e))?;
    if out.len() > max_output {
        return Err(too_large(codec, max_output));
    }
    Ok(())
}

/// gzip: RFC 1952 via flate2.
#[cfg(feature = "gzip")]
mod gzip {
    use std::io::Write as _;

    use super::{Compression, Result, compress_failed, read_bounded};

    /// Deflate level 6: what the JDK's `GZIPOutputStream`, and so Kafka's Java producer, uses.
    const LEVEL: u32 = 6;

    pub(super) fn compress(input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let fail = |e| compress_failed(Compression::Gzip, e);
        let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::new(LEVEL));
        encoder.write_all(input).map_err(fail)?;
        encoder.finish().map_err(fail)?;
        Ok(())
    }

    pub(super) fn decompress(input: &[u8], max_output: usize) -> Result<Vec<u8>> {
        // The multi-member decoder, because RFC 1952 allows several concatenated members and
        // the JDK's GZIPInputStream reads them all. The `bufread` flavour reads straight from
        // the slice instead of copying it through an internal buffer. It checks each member's
        // CRC-32 and length trailer, and fails on a missing trailer or trailing garbage.
        let decoder = flate2::bufread::MultiGzDecoder::new(input);
        read_bounded(Compression::Gzip, decoder, max_output)
    }
}

/// Snappy in the xerial framing of snappy-java's `SnappyOutputStream`, which is what Kafka's
/// Java client writes and expects:
///
/// ```text
/// header: 0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00 | version: i32 BE = 1 | min compatible: i32 BE = 1
/// chunk*: length: i32 BE | one raw snappy block of `length` bytes (at most 32 KiB of input)
/// ```
///
/// This is not snap's own "frame format" (the one with CRCs and stream identifiers): that is a
/// different, incompatible framing.
#[cfg(feature = "snappy")]
mod snappy {
    use super::{Compression, Result, compress_failed, malformed, too_large};

    /// First eight header bytes. Its first four, read as a chunk length, are negative, which is
    /// how snappy-java tells a concatenated stream's next header from a chunk.
    pub(super) const MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
    /// The first four bytes of `MAGIC`, as they appear where a chunk length is expected.
    pub(super) const MAGIC_HEAD: [u8; 4] = [0x82, b'S', b'N', b'A'];
    /// The framing version we write, and the oldest reader version that can read it.
    const VERSION: i32 = 1;
    const MIN_COMPATIBLE_VERSION: i32 = 1;
    /// Length of the whole stream header.
    pub(super) const HEADER_LEN: usize = 16;
    /// Input bytes per chunk: snappy-java's default block size, which Kafka uses.
    pub(super) const BLOCK_SIZE: usize = 32 * 1024;

    pub(super) fn compress(input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        out.reserve(HEADER_LEN + snap::raw::max_compress_len(input.len()));
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&MIN_COMPATIBLE_VERSION.to_be_bytes());

        let mut encoder = snap::raw::Encoder::new();
        let mut block = Vec::new();
        // `chunks` yields nothing for empty input, leaving the bare header, exactly as
        // snappy-java does on close without writes.
        for chunk in input.chunks(BLOCK_SIZE) {
            block.resize(snap::raw::max_compress_len(chunk.len()), 0);
            let written = encoder
                .compress(chunk, &mut block)
                .map_err(|e| compress_failed(Compression::Snappy, e))?;
            block.truncate(written);
            // A 32 KiB chunk compresses to well under 2 GiB, so this cannot fail.
            let length =
                i32::try_from(written).map_err(|e| compress_failed(Compression::Snappy, e))?;
            out.extend_from_slice(&length.to_be_bytes());
            out.extend_from_slice(&block);
        }
        Ok(())
    }

    pub(super) fn decompress(input: &[u8], max_output: usize) -> Result<Vec<u8>> {
        let mut decoder = snap::raw::Decoder::new();
        let mut out = Vec::new();
        let Some(after_magic) = input.strip_prefix(&MAGIC) else {
            // No xerial header: snappy-java then reads the whole input as one raw block, and
            // some non-Java producers write exactly that.
            append_block(&mut decoder, input, max_output, &mut out)?;
            return Ok(out);
        };

        let mut rest = skip_versions(after_magic)?;
        while let Some((length, after_length)) = rest.split_first_chunk::<4>() {
            if *length == MAGIC_HEAD {
                // Another xerial stream was concatenated onto this one; snappy-java reads on
                // through it, and so do we.
                let after_magic = rest
                    .strip_prefix(&MAGIC)
                    .ok_or_else(|| malformed(Compression::Snappy, "damaged xerial header"))?;
                rest = skip_versions(after_magic)?;
                continue;
            }
            let length = usize::try_from(i32::from_be_bytes(*length))
                .map_err(|_| malformed(Compression::Snappy, "negative xerial chunk length"))?;
            let (block, after_block) = after_length.split_at_checked(length).ok_or_else(|| {
                malformed(
                    Compression::Snappy,
                    "xerial chunk runs past the end of the data",
                )
            })?;
            append_block(&mut decoder, block, max_output, &mut out)?;
            rest = after_block;
        }
        if !rest.is_empty() {
            return Err(malformed(
                Compression::Snappy,
                "xerial stream ends inside a chunk length",
            ));
        }
        Ok(out)
    }

    /// Checks the two version fields after the magic and returns what follows them.
    fn skip_versions(after_magic: &[u8]) -> Result<&[u8]> {
        let truncated = || malformed(Compression::Snappy, "truncated xerial header");
        let (_version, rest) = after_magic.split_first_chunk::<4>().ok_or_else(truncated)?;
        let (min_compatible, rest) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
        // The writer's own version may be newer than ours, but it must say that a version-1
        // reader can follow it.
        if i32::from_be_bytes(*min_compatible) > VERSION {
            return Err(malformed(
                Compression::Snappy,
                "xerial stream needs a newer reader than version 1",
            ));
        }
        Ok(rest)
    }

    /// Decodes one raw snappy block onto the end of `out`.
    fn append_block(
        decoder: &mut snap::raw::Decoder,
        block: &[u8],
        max_output: usize,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        // A raw block starts with its decoded length; compare it to what the budget has left
        // before allocating anything, since that length is attacker-controlled.
        let length =
            snap::raw::decompress_len(block).map_err(|e| malformed(Compression::Snappy, e))?;
        if length > max_output.saturating_sub(out.len()) {
            return Err(too_large(Compression::Snappy, max_output));
        }
        let start = out.len();
        out.resize(start + length, 0);
        let (_, target) = out.split_at_mut(start);
        // snap checks that the block fills `target` exactly, so a lying length prefix fails.
        decoder
            .decompress(block, target)
            .map_err(|e| malformed(Compression::Snappy, e))?;
        Ok(())
    }
}

/// LZ4 in the LZ4 frame format, via `lz4_flex`.
mod lz4 {
    use std::io::Write as _;

    use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

    use super::{Compression, Result, compress_failed, malformed, read_bounded_into};

    /// Frame magic number, little-endian on the wire: `04 22 4D 18`.
    pub(super) const MAGIC: u32 = 0x184D_2204;
    // FLG bits (LZ4 frame format, section "Frame Descriptor").
    const FLG_BLOCK_CHECKSUM: u8 = 0x10;
    const FLG_CONTENT_SIZE: u8 = 0x08;
    const FLG_CONTENT_CHECKSUM: u8 = 0x04;
    const FLG_DICT_ID: u8 = 0x01;
    /// Bit 31 of a block size marks a block stored uncompressed.
    const BLOCK_UNCOMPRESSED: u32 = 0x8000_0000;

    pub(super) fn compress(input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        // Exactly what Kafka's KafkaLZ4BlockOutputStream writes (FLG 0x60, BD 0x40). Its reader
        // decodes every block on its own, so linked blocks would break it; it neither writes
        // nor needs the optional checksums or content size (the batch's CRC-32C already covers
        // these bytes).
        let info = FrameInfo::new()
            .block_size(BlockSize::Max64KB)
            .block_mode(BlockMode::Independent)
            .block_checksums(false)
            .content_checksum(false)
            .content_size(None);
        let mut encoder = FrameEncoder::with_frame_info(info, out);
        encoder
            .write_all(input)
            .map_err(|e| compress_failed(Compression::Lz4, e))?;
        encoder
            .finish()
            .map_err(|e| compress_failed(Compression::Lz4, e))?;
        Ok(())
    }

    pub(super) fn decompress(input: &[u8], max_output: usize) -> Result<Vec<u8>> {
        check_complete_frames(input)?;
        // `FrameDecoder` reports end of stream at the end of each frame, so read frame after
        // frame until the input is used up. The check above proved it holds whole frames only,
        // and the decoder reads its source exactly (no read-ahead), so `get_ref` shows what is
        // left.
        let mut decoder = FrameDecoder::new(input);
        let mut out = Vec::new();
        loop {
            let before = decoder.get_ref().len();
            read_bounded_into(Compression::Lz4, &mut decoder, max_output, &mut out)?;
            let after = decoder.get_ref().len();
            if after == 0 {
                return Ok(out);
            }
            if after == before {
                // Cannot happen with checked input; refuse rather than loop or drop data.
                return Err(malformed(
                    Compression::Lz4,
                    "undecodable data after a frame",
                ));
            }
        }
    }

    /// Walks the frame structure, without decompressing, to check that `input` is one or more
    /// complete LZ4 frames and nothing else.
    ///
    /// `lz4_flex`'s `FrameDecoder` takes running out of input where a block header or the end
    /// mark should be as a clean end of stream, so a truncated frame would otherwise decode
    /// "successfully" to a prefix of the records. It also accepts legacy and skippable frames,
    /// which Kafka's reader refuses; we refuse them too. The decoder still validates everything
    /// else (version, reserved bits, header checksum, block sizes, checksums, content size).
    fn check_complete_frames(input: &[u8]) -> Result<()> {
        let truncated = || malformed(Compression::Lz4, "truncated LZ4 frame");
        let mut rest = input;
        while !rest.is_empty() {
            let (magic, after) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
            if u32::from_le_bytes(*magic) != MAGIC {
                return Err(malformed(
                    Compression::Lz4,
                    "not an LZ4 frame (bad magic number; legacy and skippable frames are not \
                     accepted)",
                ));
            }
            let ([flg, _bd], after) = after.split_first_chunk::<2>().ok_or_else(truncated)?;
            let flg = *flg;
            // Optional content size and dictionary id, then the one-byte header checksum.
            let mut descriptor_tail = 1;
            if flg & FLG_CONTENT_SIZE != 0 {
                descriptor_tail += 8;
            }
            if flg & FLG_DICT_ID != 0 {
                descriptor_tail += 4;
            }
            let (_, mut after) = after
                .split_at_checked(descriptor_tail)
                .ok_or_else(truncated)?;
            let block_checksum_len = if flg & FLG_BLOCK_CHECKSUM == 0 { 0 } else { 4 };
            let content_checksum_len = if flg & FLG_CONTENT_CHECKSUM == 0 {
                0
            } else {
                4
            };
            loop {
                let (size, after_size) = after.split_first_chunk::<4>().ok_or_else(truncated)?;
                let size = u32::from_le_bytes(*size);
                if size == 0 {
                    // The end mark, then the optional content checksum.
                    let (_, after_frame) = after_size
                        .split_at_checked(content_checksum_len)
                        .ok_or_else(truncated)?;
                    after = after_frame;
                    break;
                }
                let stored = (size & !BLOCK_UNCOMPRESSED) as usize + block_checksum_len;
                let (_, after_block) = after_size.split_at_checked(stored).ok_or_else(truncated)?;
                after = after_block;
            }
            rest = after;
        }
        Ok(())
    }
}

/// Zstandard via libzstd (the `zstd` crate).
mod zstd_codec {
    use std::io::Write as _;

    use super::{Compression, Result, compress_failed, malformed, read_bounded};

    /// libzstd's default level, which is also Kafka's default `compression.zstd.level`.
    const LEVEL: i32 = 3;

    pub(super) fn compress(input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let fail = |e| compress_failed(Compression::Zstd, e);
        let mut encoder = zstd::stream::Encoder::new(out, LEVEL).map_err(fail)?;
        // Announcing the size lets libzstd record it in the frame header and shrink the window
        // to fit the data, so decoders (ours and Kafka's) need less memory for small batches.
        encoder
            .set_pledged_src_size(Some(input.len() as u64))
            .map_err(fail)?;
        encoder.include_contentsize(true).map_err(fail)?;
        encoder.write_all(input).map_err(fail)?;
        encoder.finish().map_err(fail)?;
        Ok(())
    }

    pub(super) fn decompress(input: &[u8], max_output: usize) -> Result<Vec<u8>> {
        // The streaming decoder, not the one-shot one: it decodes concatenated frames, and it
        // produces output as it goes, so `read_bounded` can stop a bomb early instead of
        // trusting a content size declared in the frame header. `with_buffer` reads the slice
        // directly (a slice is already a `BufRead`). At end of input it fails if a frame is
        // incomplete, so truncation is caught.
        let decoder = zstd::stream::read::Decoder::with_buffer(input)
            .map_err(|e| malformed(Compression::Zstd, e))?;
        read_bounded(Compression::Zstd, decoder, max_output)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Codecs this build can run.
    fn available() -> impl Iterator<Item = Compression> {
        Compression::ALL.into_iter().filter(|c| c.is_available())
    }

    /// Codecs that really compress (everything but `None`) and that this build can run.
    fn compressing() -> impl Iterator<Item = Compression> {
        available().filter(|&c| c != Compression::None)
    }

    fn compressed(codec: Compression, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        compress(codec, input, &mut out).unwrap();
        out
    }

    /// Deterministic data mixing the shapes real records have: repetitive text, incompressible
    /// noise and runs of zeros, in pieces of varying size.
    fn mixed_data(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            // xorshift64: cheap, deterministic, good enough to defeat the compressors.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut piece = 0u64;
        while out.len() < len {
            let size = 100 + (next() % 4000) as usize;
            match piece % 3 {
                0 => out.extend(
                    format!(
                        "{{\"user\":{},\"event\":\"page_view\",\"path\":\"/a/b\"}}",
                        next() % 1000
                    )
                    .bytes()
                    .cycle()
                    .take(size),
                ),
                1 => out.extend((0..size).map(|_| next() as u8)),
                _ => out.extend(std::iter::repeat_n(0, size)),
            }
            piece += 1;
        }
        out.truncate(len);
        out
    }

    #[test]
    fn ids_names_and_parsing_agree() {
        for (i, codec) in Compression::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(codec.id()), i);
            assert_eq!(Compression::from_id(codec.id()).unwrap(), codec);
            assert_eq!(codec.to_string(), codec.name());
            assert_eq!(codec.name().parse::<Compression>().unwrap(), codec);
            assert_eq!(
                codec.name().to_uppercase().parse::<Compression>().unwrap(),
                codec
            );
            // serde uses the same names (checked through serde's own value deserializer, as
            // the crate has no JSON dependency).
            let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
                serde::de::IntoDeserializer::into_deserializer(codec.name());
            assert_eq!(
                <Compression as serde::Deserialize>::deserialize(de).unwrap(),
                codec
            );
        }
        assert_eq!(Compression::default(), Compression::None);
        assert_eq!(
            "Uncompressed".parse::<Compression>().unwrap(),
            Compression::None
        );
        assert_eq!(" zstd ".parse::<Compression>().unwrap(), Compression::Zstd);
        assert_eq!(format!("{:>6}|", Compression::Lz4), "   lz4|");
        for id in 5..=u8::MAX {
            match Compression::from_id(id) {
                Err(Error::UnsupportedCompression { codec, reason }) => {
                    assert_eq!(codec, id);
                    assert_eq!(reason, "unknown codec id");
                }
                other => panic!("id {id}: {other:?}"),
            }
        }
        for bad in ["", "lz5", "gzip2", "producer"] {
            match bad.parse::<Compression>() {
                Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, "compression"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn round_trips_every_codec() {
        let inputs = [
            Vec::new(),
            b"key-0 value-0 abcdefgh abcdefgh abcdefgh abcdefgh".to_vec(),
            mixed_data(300 * 1024),
        ];
        for codec in available() {
            for input in &inputs {
                let packed = compressed(codec, input);
                let unpacked = decompress(codec, &packed, input.len())
                    .unwrap_or_else(|e| panic!("{codec}, {} bytes: {e}", input.len()));
                assert!(
                    unpacked == *input,
                    "{codec}, {} bytes: round trip differs",
                    input.len()
                );
                if codec != Compression::None && input.len() > 1000 {
                    assert!(
                        packed.len() < input.len() * 3 / 4,
                        "{codec} did not compress"
                    );
                }
            }
        }
    }

    #[test]
    fn compress_appends_to_existing_output() {
        for codec in available() {
            let mut out = b"prefix".to_vec();
            compress(codec, b"payload payload payload", &mut out).unwrap();
            assert!(out.starts_with(b"prefix"));
            let unpacked = decompress(codec, &out[6..], 100).unwrap();
            assert_eq!(unpacked, b"payload payload payload");
        }
    }

    fn assert_invalid_batch(result: Result<Vec<u8>>, context: &str) {
        match result {
            Err(Error::InvalidBatch { .. }) => {}
            Ok(out) => panic!("{context}: decoded {} bytes instead of failing", out.len()),
            Err(other) => panic!("{context}: wrong error {other:?}"),
        }
    }

    #[test]
    fn output_over_the_limit_is_an_error() {
        let input = mixed_data(100_000);
        for codec in available() {
            let packed = compressed(codec, &input);
            assert_eq!(decompress(codec, &packed, input.len()).unwrap(), input);
            assert_eq!(decompress(codec, &packed, usize::MAX).unwrap(), input);
            let over = decompress(codec, &packed, input.len() - 1);
            assert!(
                matches!(&over, Err(Error::InvalidBatch { reason }) if reason.contains("limit")),
                "{codec}: {over:?}"
            );
            assert_invalid_batch(decompress(codec, &packed, 0), codec.name());
        }
    }

    #[test]
    fn decompression_bomb_is_stopped_at_the_limit() {
        // 64 MiB of zeros packs into 3 MiB with snappy and a few kilobytes with the others.
        let zeros = vec![0u8; 64 << 20];
        for codec in compressing() {
            let packed = compressed(codec, &zeros);
            // Snappy's format caps its ratio near 21:1; the others go far beyond.
            assert!(
                packed.len() < zeros.len() / 20,
                "{codec}: {} bytes",
                packed.len()
            );
            assert_invalid_batch(decompress(codec, &packed, 1 << 20), codec.name());
        }
    }

    #[test]
    fn garbage_is_an_error() {
        let noise: Vec<u8> = mixed_data(70_000)
            .into_iter()
            .skip(4100)
            .take(3000)
            .collect();
        let garbage: [&[u8]; 5] = [
            &[],
            &[0xff; 64],
            b"this was never compressed by anything",
            &noise,
            &[0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1],
        ];
        for codec in compressing() {
            for bytes in garbage {
                assert_invalid_batch(decompress(codec, bytes, 1 << 20), codec.name());
            }
            // Another codec's valid output is garbage too.
            for other in compressing().filter(|&other| other != codec) {
                let packed = compressed(other, b"some records some records some records");
                assert_invalid_batch(
                    decompress(codec, &packed, 1 << 20),
                    &format!("{other} data read as {codec}"),
                );
            }
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let input = mixed_data(3000);
        for codec in compressing() {
            let packed = compressed(codec, &input);
            for cut in 0..packed.len() {
                let result = decompress(codec, &packed[..cut], 1 << 20);
                #[cfg(feature = "snappy")]
                if codec == Compression::Snappy && cut == snappy::HEADER_LEN {
                    // The xerial framing has no end marker: a bare header is a complete,
                    // empty stream (snappy-java writes exactly that for empty input).
                    assert_eq!(result.unwrap(), b"");
                    continue;
                }
                assert_invalid_batch(result, &format!("{codec} cut at {cut} of {}", packed.len()));
            }
        }
    }

    #[test]
    fn every_single_byte_flip_is_an_error_or_harmless() {
        // Not every flip is detectable (our snappy, LZ4 and zstd output carries no checksum of
        // its own, and gzip's header fields are not covered by its CRC: the batch's CRC-32C is
        // what guards these bytes), but no flip may cause a panic or overrun the limit.
        let input = mixed_data(2000);
        for codec in compressing() {
            let packed = compressed(codec, &input);
            for i in 0..packed.len() {
                let mut damaged = packed.clone();
                damaged[i] ^= 0x41;
                if let Ok(out) = decompress(codec, &damaged, 4096) {
                    assert!(out.len() <= 4096);
                }
            }
        }
    }

    #[cfg(feature = "snappy")]
    #[test]
    fn snappy_writes_xerial_framing() {
        let input = mixed_data(300 * 1024);
        let packed = compressed(Compression::Snappy, &input);
        assert_eq!(
            packed[..16],
            [
                0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1
            ]
        );
        // Walk the chunks: each length prefix must cover exactly one raw block, and every
        // block but the last must hold a full 32 KiB of input.
        let mut rest = &packed[16..];
        let mut sizes = Vec::new();
        while !rest.is_empty() {
            let length = i32::from_be_bytes(rest[..4].try_into().unwrap());
            let length = usize::try_from(length).unwrap();
            let block = &rest[4..4 + length];
            let block_out = snap::raw::Decoder::new().decompress_vec(block).unwrap();
            sizes.push(block_out.len());
            rest = &rest[4 + length..];
        }
        assert_eq!(sizes.len(), input.len().div_ceil(snappy::BLOCK_SIZE));
        assert!(
            sizes[..sizes.len() - 1]
                .iter()
                .all(|&s| s == snappy::BLOCK_SIZE)
        );
        assert_eq!(sizes.iter().sum::<usize>(), input.len());

        // Empty input is the bare header.
        assert_eq!(
            compressed(Compression::Snappy, b"").len(),
            snappy::HEADER_LEN
        );
        assert_eq!(snappy::MAGIC[..4], snappy::MAGIC_HEAD);
    }

    #[cfg(feature = "snappy")]
    #[test]
    fn snappy_reads_raw_blocks_and_concatenated_streams() {
        let input = mixed_data(50_000);
        let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
        assert_eq!(
            decompress(Compression::Snappy, &raw, input.len()).unwrap(),
            input
        );
        // The raw block's declared length is checked against the limit before decoding.
        assert_invalid_batch(
            decompress(Compression::Snappy, &raw, input.len() - 1),
            "raw",
        );

        let mut two = compressed(Compression::Snappy, b"first stream ");
        compress(Compression::Snappy, b"second stream", &mut two).unwrap();
        assert_eq!(
            decompress(Compression::Snappy, &two, 100).unwrap(),
            b"first stream second stream"
        );

        // A negative chunk length, and a header demanding a newer reader, are refused.
        let mut negative = compressed(Compression::Snappy, b"x");
        negative[16] = 0xf0;
        assert_invalid_batch(decompress(Compression::Snappy, &negative, 100), "negative");
        let mut newer = compressed(Compression::Snappy, b"x");
        newer[15] = 2;
        assert_invalid_batch(decompress(Compression::Snappy, &newer, 100), "newer");
        // A zero-length chunk holds no block at all, which is malformed.
        let mut empty_chunk = compressed(Compression::Snappy, b"");
        empty_chunk.extend_from_slice(&[0, 0, 0, 0]);
        assert_invalid_batch(
            decompress(Compression::Snappy, &empty_chunk, 100),
            "empty chunk",
        );
    }

    #[test]
    fn lz4_writes_kafka_frames_with_independent_blocks() {
        let input = mixed_data(300 * 1024);
        let packed = compressed(Compression::Lz4, &input);
        assert_eq!(packed[..4], [0x04, 0x22, 0x4D, 0x18]);
        let flg = packed[4];
        assert_eq!(flg & 0xC0, 0x40, "version 01");
        assert_ne!(flg & 0x20, 0, "block independence bit set");
        assert_eq!(flg & 0x1F, 0, "no checksums, content size or dictionary");
        assert_eq!(packed[5], 0x40, "64 KiB maximum block size");

        // Decode each block on its own, with no history: that succeeds only if no block refers
        // back into an earlier one, which Kafka's reader requires.
        let mut rest = &packed[7..];
        let mut total = 0;
        loop {
            let size = u32::from_le_bytes(rest[..4].try_into().unwrap());
            rest = &rest[4..];
            if size == 0 {
                break;
            }
            let stored = (size & 0x7FFF_FFFF) as usize;
            let mut block_out = vec![0; 64 * 1024];
            let n = if size & 0x8000_0000 == 0 {
                lz4_flex::block::decompress_into(&rest[..stored], &mut block_out).unwrap()
            } else {
                stored
            };
            assert!(n <= 64 * 1024);
            total += n;
            rest = &rest[stored..];
        }
        assert!(rest.is_empty(), "nothing after the end mark");
        assert_eq!(total, input.len());
    }

    /// Frames other producers may write: linked blocks, checksums, a content size, several
    /// frames in a row. We accept them all, while refusing legacy frames as Kafka does.
    #[test]
    fn lz4_reads_other_valid_frames() {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
        use std::io::Write as _;

        let input = mixed_data(200_000);
        let encode = |info: FrameInfo, data: &[u8]| {
            let mut encoder = FrameEncoder::with_frame_info(info, Vec::new());
            encoder.write_all(data).unwrap();
            encoder.finish().unwrap()
        };
        let everything = FrameInfo::new()
            .block_size(BlockSize::Max256KB)
            .block_mode(BlockMode::Linked)
            .block_checksums(true)
            .content_checksum(true)
            .content_size(Some(input.len() as u64));
        let packed = encode(everything.clone(), &input);
        assert_eq!(
            decompress(Compression::Lz4, &packed, input.len()).unwrap(),
            input
        );
        // Every truncation of it fails too, including inside the trailing content checksum.
        for cut in (0..packed.len()).rev().take(40) {
            assert_invalid_batch(decompress(Compression::Lz4, &packed[..cut], 1 << 20), "cut");
        }
        // A wrong content checksum is caught.
        let mut damaged = packed.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert_invalid_batch(decompress(Compression::Lz4, &damaged, 1 << 20), "checksum");

        let mut two = encode(FrameInfo::new(), b"first frame ");
        two.extend(encode(everything.content_size(None), b"second frame"));
        assert_eq!(
            decompress(Compression::Lz4, &two, 100).unwrap(),
            b"first frame second frame"
        );

        let mut trailing = compressed(Compression::Lz4, b"records");
        trailing.push(0);
        assert_invalid_batch(
            decompress(Compression::Lz4, &trailing, 100),
            "trailing byte",
        );
        // A legacy frame (magic 0x184C2102) with one block holding "abc" as literals.
        let legacy = [0x02, 0x21, 0x4C, 0x18, 4, 0, 0, 0, 0x30, b'a', b'b', b'c'];
        assert_invalid_batch(decompress(Compression::Lz4, &legacy, 100), "legacy frame");
    }

    #[cfg(feature = "gzip")]
    #[test]
    fn gzip_writes_one_member_and_reads_several() {
        let packed = compressed(Compression::Gzip, b"records");
        assert_eq!(
            packed[..3],
            [0x1f, 0x8b, 0x08],
            "gzip magic and deflate method"
        );
        let mut two = packed.clone();
        compress(Compression::Gzip, b" and more", &mut two).unwrap();
        assert_eq!(
            decompress(Compression::Gzip, &two, 100).unwrap(),
            b"records and more"
        );
        let mut trailing = packed;
        trailing.extend_from_slice(b"junk");
        assert_invalid_batch(
            decompress(Compression::Gzip, &trailing, 100),
            "trailing junk",
        );
    }

    #[test]
    fn zstd_writes_sized_frames_and_reads_several() {
        let packed = compressed(Compression::Zstd, b"records");
        assert_eq!(packed[..4], [0x28, 0xB5, 0x2F, 0xFD]);
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&packed).ok(),
            Some(Some(7))
        );
        let mut two = packed.clone();
        compress(Compression::Zstd, b" and more", &mut two).unwrap();
        assert_eq!(
            decompress(Compression::Zstd, &two, 100).unwrap(),
            b"records and more"
        );
        let mut trailing = packed;
        trailing.extend_from_slice(b"junk");
        assert_invalid_batch(
            decompress(Compression::Zstd, &trailing, 100),
            "trailing junk",
        );
    }

    #[cfg(not(feature = "gzip"))]
    #[test]
    fn gzip_is_refused_without_its_feature() {
        assert!(!Compression::Gzip.is_available());
        let refused = |result: Result<()>| match result {
            Err(Error::UnsupportedCompression { codec: 1, reason }) => {
                assert!(reason.contains("`gzip` feature"));
            }
            other => panic!("{other:?}"),
        };
        refused(compress(Compression::Gzip, b"x", &mut Vec::new()));
        refused(decompress(Compression::Gzip, &[0x1f, 0x8b], 100).map(drop));
        refused(decompress(Compression::Gzip, &[], 100).map(drop));
    }

    #[cfg(not(feature = "snappy"))]
    #[test]
    fn snappy_is_refused_without_its_feature() {
        assert!(!Compression::Snappy.is_available());
        let refused = |result: Result<()>| match result {
            Err(Error::UnsupportedCompression { codec: 2, reason }) => {
                assert!(reason.contains("`snappy` feature"));
            }
            other => panic!("{other:?}"),
        };
        refused(compress(Compression::Snappy, b"x", &mut Vec::new()));
        refused(decompress(Compression::Snappy, &[0x82, b'S'], 100).map(drop));
    }

    /// Batches written by kafka-python, an independent implementation (see the fixtures'
    /// README). Their records sections must decode to the uncompressed batch's records.
    #[test]
    fn decodes_kafka_python_fixtures() {
        const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/kafka-python");
        // RecordBatch v2 header: base offset 8, length 4, leader epoch 4, magic 1, CRC 4,
        // attributes 2, last offset delta 4, two timestamps 16, producer id 8, epoch 2, base
        // sequence 4, record count 4.
        const RECORDS_START: usize = 61;
        const ATTRIBUTES: usize = 21;
        let read = |codec: Compression| {
            let path = format!("{DIR}/batch-{codec}.bin");
            let batch = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let length = i32::from_be_bytes(batch[8..12].try_into().unwrap());
            assert_eq!(
                usize::try_from(length).unwrap() + 12,
                batch.len(),
                "{path}: length"
            );
            let attributes =
                u16::from_be_bytes(batch[ATTRIBUTES..ATTRIBUTES + 2].try_into().unwrap());
            assert_eq!(
                attributes & 0x7,
                u16::from(codec.id()),
                "{path}: codec bits"
            );
            batch[RECORDS_START..].to_vec()
        };
        let expected = read(Compression::None);
        for codec in compressing() {
            let section = read(codec);
            let records = decompress(codec, &section, 1 << 20)
                .unwrap_or_else(|e| panic!("{codec} fixture: {e}"));
            assert!(
                records == expected,
                "{codec} fixture decodes to different records"
            );
        }
        for codec in Compression::ALL.into_iter().filter(|c| !c.is_available()) {
            let section = read(codec);
            assert!(matches!(
                decompress(codec, &section, 1 << 20),
                Err(Error::UnsupportedCompression { .. })
            ));
        }
    }

    proptest! {
        /// Any byte string is an `Ok` within the limit or an error, with every codec.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
            for codec in available() {
                if let Ok(out) = decompress(codec, &bytes, 8192) {
                    prop_assert!(out.len() <= 8192);
                }
            }
        }

        /// Valid streams with a few bytes changed and a random length reach much deeper into
        /// the decoders than random bytes do.
        #[test]
        fn damaged_streams_never_panic(
            input in prop::collection::vec(any::<u8>(), 0..3000),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            keep in any::<prop::sample::Index>(),
        ) {
            for codec in available() {
                let mut packed = compressed(codec, &input);
                if packed.is_empty() {
                    // `None` with empty input: nothing to damage.
                    continue;
                }
                for (at, byte) in &edits {
                    let at = at.index(packed.len());
                    packed[at] = *byte;
                }
                let len = keep.index(packed.len() + 1);
                packed.truncate(len.max(packed.len() / 2));
                if let Ok(out) = decompress(codec, &packed, 2048) {
                    prop_assert!(out.len() <= 2048);
                }
            }
        }
    }
}
