//! Serde adapter that stores a per-channel array as a length-prefixed sequence: a row written
//! with any number of channels decodes into this build's array (missing channels empty, unknown
//! trailing ones ignored), so adding a channel never makes stored rows unreadable.

use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Writes the array as a sequence (postcard: a varint length, then the elements).
pub fn serialize<S, T, const N: usize>(values: &[Option<T>; N], s: S) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    T: Serialize,
{
    let mut seq = s.serialize_seq(Some(N))?;
    for v in values {
        seq.serialize_element(v)?;
    }
    seq.end()
}

/// Reads a sequence of any length into the array.
pub fn deserialize<'de, D, T, const N: usize>(d: D) -> Result<[Option<T>; N], D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Channels<T, const N: usize>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for Channels<T, N> {
        type Value = [Option<T>; N];

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a sequence of per-channel values")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out: [Option<T>; N] = std::array::from_fn(|_| None);
            let mut i = 0;
            while let Some(v) = seq.next_element::<Option<T>>()? {
                if let Some(slot) = out.get_mut(i) {
                    *slot = v;
                }
                i += 1;
            }
            Ok(out)
        }
    }

    d.deserialize_seq(Channels::<T, N>(std::marker::PhantomData))
}
