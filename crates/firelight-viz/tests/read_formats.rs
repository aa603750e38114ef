//! Photos in every supported format read back as the pixels written; files that are not images,
//! are cut short or are too large are refused with a reason, never a panic.

use std::path::{Path, PathBuf};

use firelight_core::Error;
use firelight_viz::RgbImage;
use image::ImageFormat;

/// A fresh directory for one test (removed when dropped).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("firelight-viz-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A 24 x 16 picture of four flat colours (so that lossy and palette formats keep them close).
fn quadrants() -> image::RgbImage {
    image::RgbImage::from_fn(24, 16, |x, y| match (x < 12, y < 8) {
        (true, true) => image::Rgb([220, 30, 40]),
        (false, true) => image::Rgb([20, 160, 60]),
        (true, false) => image::Rgb([30, 60, 200]),
        (false, false) => image::Rgb([240, 240, 240]),
    })
}

fn max_diff(a: &[u8], b: &[u8]) -> u8 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

/// The reason of an image error (an `Ok` would print the whole picture, so it is reported short).
fn reason(result: firelight_core::Result<RgbImage>) -> String {
    let error = match result {
        Ok(image) => panic!(
            "expected an error, read a {}x{} image",
            image.width, image.height
        ),
        Err(error) => error,
    };
    match error {
        Error::Image { reason, .. } => reason,
        other => panic!("expected an image error, got {other}"),
    }
}

#[test]
fn every_format_round_trips_whatever_the_file_is_called() {
    let dir = TempDir::new("formats");
    let original = quadrants();
    // Lossless formats come back exactly; JPEG within its compression error.
    let cases = [
        (ImageFormat::Png, 0),
        (ImageFormat::Jpeg, 12),
        (ImageFormat::WebP, 0),
        (ImageFormat::Bmp, 0),
        (ImageFormat::Tiff, 0),
        (ImageFormat::Gif, 0),
    ];
    for (format, tolerance) in cases {
        // The wrong extension on purpose: the content decides.
        let path = dir.path(&format!("photo-{format:?}.dat"));
        original.save_with_format(&path, format).unwrap();
        let read =
            RgbImage::read(&path).unwrap_or_else(|e| panic!("{format:?} should read back: {e}"));
        assert_eq!((read.width, read.height), (24, 16), "{format:?}");
        let diff = max_diff(&read.data, original.as_raw());
        assert!(
            diff <= tolerance,
            "{format:?} differs by {diff} > {tolerance}"
        );
    }
}

#[test]
fn png_and_jpeg_readers_keep_their_names_and_refuse_the_other_format() {
    let dir = TempDir::new("named");
    let (png, jpeg) = (dir.path("a.png"), dir.path("a.jpg"));
    quadrants()
        .save_with_format(&png, ImageFormat::Png)
        .unwrap();
    quadrants()
        .save_with_format(&jpeg, ImageFormat::Jpeg)
        .unwrap();
    assert_eq!(
        RgbImage::read_png(&png).unwrap().data,
        quadrants().into_raw()
    );
    assert_eq!(RgbImage::read_jpeg(&jpeg).unwrap().width, 24);
    let err = reason(RgbImage::read_png(&jpeg));
    assert!(err.contains("PNG"), "{err}");
    let err = reason(RgbImage::read_jpeg(&png));
    assert!(err.contains("JPEG"), "{err}");
}

#[test]
fn alpha_is_dropped_and_grey_becomes_three_channels() {
    let dir = TempDir::new("alpha");
    let path = dir.path("rgba.png");
    image::RgbaImage::from_pixel(3, 2, image::Rgba([10, 20, 30, 0]))
        .save_with_format(&path, ImageFormat::Png)
        .unwrap();
    assert_eq!(RgbImage::read(&path).unwrap().pixel(2, 1), [10, 20, 30]);
    let path = dir.path("grey.png");
    image::GrayImage::from_pixel(3, 2, image::Luma([77]))
        .save_with_format(&path, ImageFormat::Png)
        .unwrap();
    assert_eq!(RgbImage::read(&path).unwrap().pixel(0, 0), [77, 77, 77]);
    let path = dir.path("deep.png");
    image::ImageBuffer::<image::Rgb<u16>, _>::from_pixel(2, 2, image::Rgb([65535, 0, 32896]))
        .save_with_format(&path, ImageFormat::Png)
        .unwrap();
    assert_eq!(RgbImage::read(&path).unwrap().pixel(1, 1), [255, 0, 128]);
}

#[test]
fn a_text_file_named_png_is_not_an_image() {
    let dir = TempDir::new("text");
    let path = dir.path("notes.png");
    std::fs::write(&path, "these are notes, not pixels\n").unwrap();
    let err = reason(RgbImage::read(&path));
    assert!(err.contains("not an image"), "{err}");
    assert!(err.contains("PNG, JPEG, WebP, BMP, TIFF or GIF"), "{err}");
}

#[test]
fn a_truncated_png_is_refused() {
    let dir = TempDir::new("truncated");
    let path = dir.path("cut.png");
    quadrants()
        .save_with_format(&path, ImageFormat::Png)
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for keep in [bytes.len() / 2, 40, 20, 9] {
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let err = reason(RgbImage::read(&path));
        assert!(
            err.contains("truncated") || err.contains("corrupt"),
            "{keep} bytes: {err}"
        );
    }
}

#[test]
fn a_format_firelight_does_not_read_is_named() {
    let dir = TempDir::new("pnm");
    let path = dir.path("photo.png");
    std::fs::write(&path, b"P6\n2 2\n255\n012345678901").unwrap();
    let err = reason(RgbImage::read(&path));
    assert!(err.contains("unsupported format PNM"), "{err}");
}

/// A PNG announcing `width` x `height` RGB pixels in its header, with a few bytes of data.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut header = width.to_be_bytes().to_vec();
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [
        (b"IHDR", header),
        (b"IDAT", vec![0x78, 0x9c, 0, 0]),
        (b"IEND", vec![]),
    ] {
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(&data);
        bytes.extend_from_slice(&(data.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&chunk);
        bytes.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    bytes
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_huge_image_is_refused_from_its_header() {
    let dir = TempDir::new("huge");
    let path = dir.path("huge.png");
    std::fs::write(&path, png_header(30_000, 30_000)).unwrap();
    let err = reason(RgbImage::read(&path));
    assert!(err.contains("too large"), "{err}");
}

#[test]
fn a_missing_file_is_an_io_error() {
    let err = RgbImage::read(Path::new("/nonexistent/firelight/photo.png"))
        .err()
        .unwrap();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn written_pngs_read_back_and_a_bad_buffer_is_refused() {
    let dir = TempDir::new("write");
    let path = dir.path("out.png");
    let image = RgbImage {
        width: 2,
        height: 1,
        data: vec![1, 2, 3, 250, 251, 252],
    };
    image.write_png(&path).unwrap();
    assert_eq!(RgbImage::read(&path).unwrap(), image);
    let broken = RgbImage {
        width: 5,
        height: 5,
        data: vec![0; 3],
    };
    assert!(broken.write_png(dir.path("broken.png")).is_err());
    assert!(!dir.path("broken.png").exists());
}

#[test]
fn the_bundled_photos_still_read() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/images");
    for (name, size) in [("chelsea.png", (451, 300)), ("rocket.jpg", (640, 427))] {
        let photo = RgbImage::read(root.join(name)).unwrap();
        assert_eq!((photo.width, photo.height), size, "{name}");
    }
}

#[test]
fn a_truncated_jpeg_is_refused() {
    let rocket = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/images/rocket.jpg");
    let bytes = std::fs::read(rocket).unwrap();
    let dir = TempDir::new("truncated-jpeg");
    let path = dir.path("cut.jpg");
    for keep in [bytes.len() / 3, bytes.len() - 2, 3] {
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let err = reason(RgbImage::read(&path));
        assert!(err.contains("JPEG"), "{keep} bytes: {err}");
    }
}
