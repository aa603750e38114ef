//! Reading and writing float32 `.npy` files (NumPy format 1.0-3.0, C order).
//!
//! Reading accepts little-endian `<f4` and `<f8` (converted to f32) and, for masks and token ids,
//! `<i8`, `<i4`, `<i2`, `<u8`, `<u4`, `<u2`, `|u1`, `|i1` and `|b1` ([`read_npy_value`] keeps them integers or bools; the
//! float readers convert them); writing produces `<f4`, into a temporary file that is renamed into
//! place so a failed write leaves nothing behind.

use std::io::Write;
use std::path::Path;

use burn::tensor::Device;

use crate::error::{Error, Result};
use crate::tensor::DynTensor;

const MAGIC: &[u8] = b"\x93NUMPY";
/// Refuse headers longer than this: real headers are a few hundred bytes.
const MAX_HEADER: usize = 1 << 16;

/// An array read from a `.npy` file: its shape and values in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// The shape.
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<f32>,
}

impl NpyArray {
    /// As a tensor on `device` (a 0-d array becomes shape `[1]`).
    pub fn into_tensor(self, device: &Device) -> Result<DynTensor> {
        let shape = if self.shape.is_empty() {
            vec![1]
        } else {
            self.shape
        };
        DynTensor::from_vec(self.data, shape, device)
    }
}

/// Reads a float `.npy` file.
pub fn read_npy(path: impl AsRef<Path>) -> Result<NpyArray> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_npy(&bytes).map_err(|reason| Error::Npy {
        path: path.to_path_buf(),
        reason,
    })
}

/// Reads a float `.npy` file into a tensor on `device`.
pub fn read_npy_tensor(path: impl AsRef<Path>, device: &Device) -> Result<DynTensor> {
    read_npy(path)?.into_tensor(device)
}

/// The values of a `.npy` file in their own kind.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyData {
    /// Floating point (`<f4`, `<f8`), as f32.
    Float(Vec<f32>),
    /// Integers (`<i8`, `<i4`, `<i2`, `|i1`, `<u8`, `<u4`, `<u2`, `|u1`), as i64.
    Int(Vec<i64>),
    /// Booleans (`|b1`).
    Bool(Vec<bool>),
}

/// Reads a `.npy` file of any supported dtype as a [`Value`](crate::Value) of its own kind on
/// `device` (token ids stay integers, masks bools).
pub fn read_npy_value(path: impl AsRef<Path>, device: &Device) -> Result<crate::Value> {
    let path = path.as_ref();
    let fail = |reason: String| Error::Npy {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (shape, data) = parse_npy_data(&bytes).map_err(fail)?;
    let shape = if shape.is_empty() { vec![1] } else { shape };
    let data = match data {
        NpyData::Float(v) => burn::tensor::TensorData::new(v, shape),
        NpyData::Int(v) => burn::tensor::TensorData::new(v, shape),
        NpyData::Bool(v) => burn::tensor::TensorData::new(v, shape),
    };
    crate::Value::from_data(data, device).map_err(|e| fail(e.to_string()))
}

/// Parses the bytes of a `.npy` file (integers and bools converted to f32).
pub fn parse_npy(bytes: &[u8]) -> std::result::Result<NpyArray, String> {
    let (shape, data) = parse_npy_data(bytes)?;
    let data = match data {
        NpyData::Float(v) => v,
        NpyData::Int(v) => v.into_iter().map(|x| x as f32).collect(),
        NpyData::Bool(v) => v.into_iter().map(|x| f32::from(u8::from(x))).collect(),
    };
    Ok(NpyArray { shape, data })
}

/// Parses the bytes of a `.npy` file into its shape and values of their own kind.
pub fn parse_npy_data(bytes: &[u8]) -> std::result::Result<(Vec<usize>, NpyData), String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file (bad magic bytes)".into());
    }
    let major = bytes[6];
    let (header_len, header_start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated header".into());
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(format!("unsupported .npy version {v}")),
    };
    if header_len > MAX_HEADER || header_start + header_len > bytes.len() {
        return Err("truncated or oversized header".into());
    }
    let header = std::str::from_utf8(&bytes[header_start..header_start + header_len])
        .map_err(|_| "header is not text".to_string())?;
    let descr = dict_value(header, "descr").ok_or("header has no 'descr'")?;
    let fortran = dict_value(header, "fortran_order").ok_or("header has no 'fortran_order'")?;
    let shape_text = dict_value(header, "shape").ok_or("header has no 'shape'")?;
    if fortran.trim() != "False" {
        return Err("Fortran-ordered arrays are not supported; save with C order".into());
    }
    let shape = parse_shape(shape_text)?;
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or("shape overflows")?;
    let payload = &bytes[header_start + header_len..];
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
    let data = match descr {
        "<f4" => NpyData::Float(read_values::<4, _>(payload, count, f32::from_le_bytes)?),
        "<f8" => NpyData::Float(read_values::<8, _>(payload, count, |b| {
            f64::from_le_bytes(b) as f32
        })?),
        "<i8" => NpyData::Int(read_values::<8, _>(payload, count, i64::from_le_bytes)?),
        "<i4" => NpyData::Int(read_values::<4, _>(payload, count, |b| {
            i64::from(i32::from_le_bytes(b))
        })?),
        "|i1" => NpyData::Int(read_values::<1, _>(payload, count, |b| {
            i64::from(b[0] as i8)
        })?),
        "|u1" => NpyData::Int(read_values::<1, _>(payload, count, |b| i64::from(b[0]))?),
        "|b1" => NpyData::Bool(read_values::<1, _>(payload, count, |b| b[0] != 0)?),
        other => {
            return Err(format!(
                "dtype {other} is not supported; firelight reads little-endian float32 (<f4), \
                 float64 (<f8), little-endian signed or unsigned integers and bool"
            ));
        }
    };
    Ok((shape, data))
}

fn read_values<const N: usize, T>(
    payload: &[u8],
    count: usize,
    convert: impl Fn([u8; N]) -> T,
) -> std::result::Result<Vec<T>, String> {
    let needed = count.checked_mul(N).ok_or("shape overflows")?;
    if payload.len() < needed {
        return Err(format!(
            "data is truncated: {} bytes for {count} values of {N} bytes",
            payload.len()
        ));
    }
    Ok(payload[..needed]
        .chunks_exact(N)
        .map(|c| convert(c.try_into().expect("chunks_exact yields N bytes")))
        .collect())
}

/// The text after `'key':` up to the next top-level comma or closing brace.
fn dict_value<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    let start = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[start + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let mut depth = 0i32;
    for (i, ch) in rest.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&rest[..=i]);
                }
            }
            ',' | '}' if depth == 0 => return Some(&rest[..i]),
            _ => {}
        }
    }
    None
}

fn parse_shape(text: &str) -> std::result::Result<Vec<usize>, String> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("bad shape {text}"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("bad shape {text}")))
        .collect()
}

/// The bytes of a `<f4` `.npy` file holding `data` with `shape`.
pub fn encode_npy(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
    // Pad so that magic + version + length + header + newline is a multiple of 64.
    let unpadded = MAGIC.len() + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(header.len() + 10 + data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes `data` with `shape` as a `<f4` `.npy` file, atomically.
pub fn write_npy(path: impl AsRef<Path>, shape: &[usize], data: &[f32]) -> Result<()> {
    let expected: usize = shape.iter().product();
    if expected != data.len() {
        return Err(Error::ShapeMismatch {
            what: "npy data length vs shape".into(),
            expected: shape.to_vec(),
            got: vec![data.len()],
        });
    }
    write_atomic(path.as_ref(), &encode_npy(shape, data))
}

/// Writes a tensor as a `<f4` `.npy` file, atomically.
pub fn write_npy_tensor(path: impl AsRef<Path>, tensor: &DynTensor) -> Result<()> {
    write_npy(path, tensor.shape(), &tensor.to_vec()?)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place, so a failure
/// never leaves a half-written `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::io(path, std::io::Error::other("not a file path")))?;
    // Unique per process, call and moment: shards on other machines may share the folder (and
    // a pid), and a pool's workers share the process.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{call}-{nanos}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let bytes = encode_npy(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, -6.5]);
        assert_eq!((bytes.len() - 6 * 4) % 64, 0);
        let arr = parse_npy(&bytes).unwrap();
        assert_eq!(arr.shape, vec![2, 3]);
        assert_eq!(arr.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.5]);
    }

    #[test]
    fn integers_and_bools_are_read_in_their_own_kind() {
        let mut bytes = encode_npy(&[2], &[0.0, 0.0]);
        let pos = bytes.windows(3).position(|w| w == b"<f4").unwrap();
        bytes[pos..pos + 3].copy_from_slice(b"<i4");
        let len = bytes.len();
        bytes[len - 8..].copy_from_slice(&[7, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff]);
        let (shape, data) = parse_npy_data(&bytes).unwrap();
        assert_eq!((shape, data), (vec![2], NpyData::Int(vec![7, -2])));
        assert_eq!(parse_npy(&bytes).unwrap().data, vec![7.0, -2.0]);
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert!(parse_npy(b"hello world").is_err());
        let bytes = encode_npy(&[4], &[1.0, 2.0, 3.0, 4.0]);
        assert!(parse_npy(&bytes[..bytes.len() - 1]).is_err());
        let mut bytes = encode_npy(&[1], &[1.0]);
        let pos = bytes.windows(3).position(|w| w == b"<f4").unwrap();
        // Complex numbers are no attribution input: refused, naming the dtype.
        bytes[pos..pos + 3].copy_from_slice(b"<c8");
        assert!(parse_npy(&bytes).unwrap_err().contains("<c8"));
    }

    proptest::proptest! {
        /// Untrusted bytes give an error or an array, never a panic or a runaway allocation.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse_npy(&bytes);
        }

        /// A valid header with arbitrary corruption after the magic bytes.
        #[test]
        fn corrupted_files_never_panic(cut in 0usize..200, flip in 6usize..120, byte in proptest::num::u8::ANY) {
            let mut bytes = encode_npy(&[3, 4], &[1.5; 12]);
            if flip < bytes.len() {
                bytes[flip] = byte;
            }
            bytes.truncate(cut.max(6));
            let _ = parse_npy(&bytes);
        }
    }

    #[test]
    fn absurd_shapes_are_errors() {
        let mut bytes = encode_npy(&[2], &[0.0; 2]);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let at = text.find("(2,)").unwrap();
        bytes.splice(at..at + 4, b"(99999999999, 99999999999)".iter().copied());
        let len = (bytes.len() - 10 - 8) as u16;
        bytes[8..10].copy_from_slice(&len.to_le_bytes());
        assert!(parse_npy(&bytes).is_err());
    }

    #[test]
    fn one_dimensional_shape_has_trailing_comma() {
        let bytes = encode_npy(&[3], &[0.0; 3]);
        assert!(String::from_utf8_lossy(&bytes).contains("(3,)"));
        assert_eq!(parse_npy(&bytes).unwrap().shape, vec![3]);
    }
}
