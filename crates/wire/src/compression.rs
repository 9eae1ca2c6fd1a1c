//! Which compression an image stream uses (by its magic, never by the URL) and a decoder for it.
//! Both ends use it: the agent decodes the images it writes, the appliance decodes uploads to
//! record the SHA-256 the agent will verify (that of the decompressed image).

use std::io::{self, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Raw,
    Gzip,
    Zstd,
    Xz,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Gzip => "gzip",
            Format::Zstd => "zstd",
            Format::Xz => "xz",
        }
    }
}

/// Bytes to read before [`detect`] can tell.
pub const MAGIC_LEN: usize = 6;

pub fn detect(head: &[u8]) -> Format {
    if head.starts_with(&[0x1f, 0x8b]) {
        Format::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Format::Zstd
    } else if head.starts_with(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) {
        Format::Xz
    } else {
        Format::Raw
    }
}

/// The decompressed stream. Concatenated members/streams/frames are all decoded (pigz, pixz and
/// `zstd -T` write those).
pub fn decoder<'a, R: Read + 'a>(format: Format, r: R) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match format {
        Format::Raw => Box::new(r),
        Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Format::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        Format::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(r)),
    })
}

/// Fills `buf` unless the stream ends first; returns how much it read.
pub fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_full_reads_across_short_reads() {
        let data = vec![7u8; 1000];
        let mut r = io::Read::chain(&data[..300], &data[300..]);
        let mut buf = [0u8; 600];
        assert_eq!(read_full(&mut r, &mut buf).unwrap(), 600);
        assert_eq!(read_full(&mut r, &mut buf).unwrap(), 400);
        assert_eq!(read_full(&mut r, &mut buf).unwrap(), 0);
    }

    #[test]
    fn magic_decides_and_every_format_round_trips() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &data).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&data[..], 1).unwrap();
        let mut xz = Vec::new();
        liblzma::read::XzEncoder::new(&data[..], 1).read_to_end(&mut xz).unwrap();
        for (bytes, want) in [(&data, Format::Raw), (&gz, Format::Gzip), (&zs, Format::Zstd), (&xz, Format::Xz)] {
            let f = detect(&bytes[..MAGIC_LEN]);
            assert_eq!(f, want);
            let mut out = Vec::new();
            decoder(f, &bytes[..]).unwrap().read_to_end(&mut out).unwrap();
            assert!(out == data, "{}", f.as_str());
        }
        assert_eq!(detect(&[]), Format::Raw);
    }
}
