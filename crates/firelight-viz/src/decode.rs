//! Photos in: PNG, JPEG, WebP, BMP, TIFF and GIF through the `image` crate, told apart by their
//! content, converted to 8-bit RGB, with huge images refused before any pixel is decoded.

use std::io::{BufRead, BufReader, Seek};
use std::path::Path;

use firelight_core::{Error, Result};
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};

use crate::image::RgbImage;

/// Images larger than this many pixels are refused rather than decoded.
pub(crate) const MAX_PIXELS: u64 = 1 << 28;

/// The most the decoder may allocate: [`MAX_PIXELS`] at 16-bit RGBA, the widest layout these
/// formats decode to, so that the pixel limit, not the allocation limit, is what refuses a photo.
const MAX_ALLOC: u64 = MAX_PIXELS * 8;

/// The formats firelight reads (the `image` features enabled in Cargo.toml).
const SUPPORTED: [ImageFormat; 6] = [
    ImageFormat::Png,
    ImageFormat::Jpeg,
    ImageFormat::WebP,
    ImageFormat::Bmp,
    ImageFormat::Tiff,
    ImageFormat::Gif,
];

const SUPPORTED_NAMES: &str = "PNG, JPEG, WebP, BMP, TIFF or GIF";

impl RgbImage {
    /// Reads a photo in PNG, JPEG, WebP, BMP, TIFF or GIF (the first frame), told apart by its
    /// first bytes, not its name.
    ///
    /// Grey images become three equal channels; 16-bit samples are rounded to 8 bits; an alpha
    /// channel is dropped (not composited), as PIL's `Image.convert("RGB")` does in the torchvision
    /// pipelines whose inputs firelight reproduces. Images of more than 2^28 pixels are refused
    /// from their header, before decoding.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let reader = ImageReader::new(open(path)?)
            .with_guessed_format()
            .map_err(|e| Error::io(path, e))?;
        decode(path, reader)
    }

    /// Decodes a photo held in memory (a file a browser page was given, a download), as
    /// [`RgbImage::read`] reads one from disk; errors name the photo `name`.
    pub fn decode(name: impl AsRef<Path>, bytes: &[u8]) -> Result<Self> {
        let name = name.as_ref();
        let reader = ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| Error::io(name, e))?;
        decode(name, reader)
    }

    /// Reads a PNG (any bit depth and colour type; see [`RgbImage::read`] for the conversion).
    /// Anything else, whatever its name, is refused.
    pub fn read_png(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        decode(
            path,
            ImageReader::with_format(open(path)?, ImageFormat::Png),
        )
    }

    /// Reads a baseline or progressive JPEG (greyscale, RGB or CMYK). Anything else, whatever its
    /// name, is refused.
    pub fn read_jpeg(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        decode(
            path,
            ImageReader::with_format(open(path)?, ImageFormat::Jpeg),
        )
    }
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(BufReader::new(file))
}

fn decode<R: BufRead + Seek>(path: &Path, mut reader: ImageReader<R>) -> Result<RgbImage> {
    let bad = |reason: String| Error::Image {
        path: path.to_path_buf(),
        reason,
    };
    let format = reader.format().ok_or_else(|| {
        bad(format!(
            "not an image: its first bytes match none of {SUPPORTED_NAMES}"
        ))
    })?;
    let name = format_name(format);
    if !SUPPORTED.contains(&format) {
        return Err(bad(format!(
            "unsupported format {name} (firelight reads {SUPPORTED_NAMES})"
        )));
    }
    if format == ImageFormat::Jpeg {
        let mut inner = reader.into_inner();
        if !jpeg_is_complete(path, &mut inner)? {
            return Err(bad(
                "truncated JPEG: no end-of-image marker after its last scan".into(),
            ));
        }
        reader = ImageReader::with_format(inner, format);
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(|e| bad(describe(&e, name)))?;
    // The header alone gives the size: refuse before the pixel buffer is allocated.
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(bad(format!(
            "{width}x{height} pixels is too large (at most {MAX_PIXELS} pixels)"
        )));
    }
    let image = DynamicImage::from_decoder(decoder).map_err(|e| bad(describe(&e, name)))?;
    let rgb = image.into_rgb8();
    Ok(RgbImage {
        width: rgb.width() as usize,
        height: rgb.height() as usize,
        data: rgb.into_raw(),
    })
}

/// Whether the JPEG's last scan is followed by its end-of-image marker. The decoder fills a cut-off
/// scan with grey and reports success (browsers' leniency); PIL, which the PyTorch pipelines read
/// photos with, refuses such a file, and so do we. Inside a scan every `0xFF` byte is followed by
/// `0x00` or a restart marker, so `FF DA` (start of scan) and `FF D9` (end of image) are real markers.
fn jpeg_is_complete(path: &Path, reader: &mut (impl BufRead + Seek)) -> Result<bool> {
    use std::io::SeekFrom;
    let start = reader.stream_position().map_err(|e| Error::io(path, e))?;
    let complete = jpeg_ends(path, &mut *reader);
    reader
        .seek(SeekFrom::Start(start))
        .map_err(|e| Error::io(path, e))?;
    complete
}

fn jpeg_ends(path: &Path, mut reader: impl std::io::Read) -> Result<bool> {
    let mut chunk = [0u8; 1 << 16];
    let (mut previous, mut in_scan, mut ended) = (0u8, false, false);
    loop {
        let n = reader.read(&mut chunk).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            return Ok(in_scan && ended);
        }
        for &byte in &chunk[..n] {
            if previous == 0xFF {
                match byte {
                    0xDA => (in_scan, ended) = (true, false),
                    0xD9 => ended = true,
                    _ => {}
                }
            }
            previous = byte;
        }
    }
}

/// A reason a person can act on: which kind of failure, then the decoder's own words.
fn describe(error: &ImageError, format: &str) -> String {
    match error {
        ImageError::Decoding(e) => format!("not a readable {format} (corrupt data: {e})"),
        ImageError::IoError(e) => format!("truncated or unreadable {format} data ({e})"),
        ImageError::Limits(e) => format!("too large to decode ({e})"),
        ImageError::Unsupported(e) => format!("unsupported {format} variant ({e})"),
        other => format!("cannot decode {format} ({other})"),
    }
}

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Png => "PNG",
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::WebP => "WebP",
        ImageFormat::Bmp => "BMP",
        ImageFormat::Tiff => "TIFF",
        ImageFormat::Gif => "GIF",
        ImageFormat::Avif => "AVIF",
        ImageFormat::Ico => "ICO",
        ImageFormat::Pnm => "PNM",
        ImageFormat::Dds => "DDS",
        ImageFormat::Hdr => "HDR",
        ImageFormat::OpenExr => "OpenEXR",
        ImageFormat::Qoi => "QOI",
        ImageFormat::Tga => "TGA",
        ImageFormat::Farbfeld => "Farbfeld",
        _ => "image",
    }
}
