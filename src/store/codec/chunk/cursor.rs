//! Reading a chunk back: every count and length is checked against the bytes left, so a
//! damaged chunk is reported as corrupt instead of trusted.

use super::{POW10, RAW, VERSION, corrupt};
use crate::store::StoreError;

/// Reads a chunk, checking every length against what is left.
pub(super) struct Cursor<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) at: usize,
}

impl Cursor<'_> {
    pub(super) fn byte(&mut self) -> Result<u8, StoreError> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| corrupt("chunk cut short".into()))?;
        self.at += 1;
        Ok(b)
    }

    pub(super) fn version(&mut self) -> Result<(), StoreError> {
        match self.byte()? {
            VERSION => Ok(()),
            v => Err(corrupt(format!("unknown chunk version {v}"))),
        }
    }

    pub(super) fn u(&mut self) -> Result<u64, StoreError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(corrupt("varint too long".into()))
    }

    pub(super) fn i(&mut self) -> Result<i64, StoreError> {
        let u = self.u()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A count or index, bounded by the bytes left (each counted item takes at least one).
    pub(super) fn len(&mut self) -> Result<usize, StoreError> {
        let v = self.u()?;
        usize::try_from(v)
            .ok()
            .filter(|n| *n <= self.bytes.len().saturating_mul(8))
            .ok_or_else(|| corrupt(format!("count {v} larger than the chunk")))
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&[u8], StoreError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| corrupt("chunk cut short".into()))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    pub(super) fn u64_le(&mut self) -> Result<u64, StoreError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(super) fn string(&mut self) -> Result<String, StoreError> {
        let n = self.len()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|e| corrupt(e.to_string()))
    }

    pub(super) fn presence(&mut self, n: usize) -> Result<Vec<bool>, StoreError> {
        match self.byte()? {
            0 => Ok(vec![false; n]),
            1 => Ok(vec![true; n]),
            2 => {
                let bits = self.take(n.div_ceil(8))?;
                Ok((0..n).map(|i| bits[i / 8] & (1 << (i % 8)) != 0).collect())
            }
            m => Err(corrupt(format!("unknown presence mode {m}"))),
        }
    }

    pub(super) fn int_column(&mut self, n: usize) -> Result<Vec<Option<i64>>, StoreError> {
        let mut prev = 0i64;
        self.presence(n)?
            .into_iter()
            .map(|p| {
                p.then(|| {
                    prev = prev.wrapping_add(self.i()?);
                    Ok(prev)
                })
                .transpose()
            })
            .collect()
    }

    pub(super) fn float_column(&mut self, n: usize) -> Result<Vec<Option<f64>>, StoreError> {
        let present = self.presence(n)?;
        if !present.contains(&true) {
            return Ok(vec![None; n]);
        }
        let scale = self.byte()?;
        let p = match scale {
            RAW => None,
            k => Some(
                *POW10
                    .get(usize::from(k))
                    .ok_or_else(|| corrupt(format!("unknown scale {k}")))?,
            ),
        };
        let mut prev = 0i64;
        present
            .into_iter()
            .map(|is| {
                if !is {
                    return Ok(None);
                }
                Ok(Some(match p {
                    Some(p) => {
                        prev = prev.wrapping_add(self.i()?);
                        prev as f64 / p
                    }
                    None => f64::from_bits(self.u64_le()?),
                }))
            })
            .collect()
    }

    pub(super) fn end<T>(&self, v: T) -> Result<T, StoreError> {
        if self.at == self.bytes.len() {
            Ok(v)
        } else {
            Err(corrupt(format!(
                "{} bytes after the chunk's end",
                self.bytes.len() - self.at
            )))
        }
    }
}
