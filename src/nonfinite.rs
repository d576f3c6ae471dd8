//! Non-finite numbers in JSON records: JSON has neither NaN nor infinity,
//! so a non-finite f64 is written as `null`, and read back as the value
//! the field means by it (a diverged loss is NaN, an infinite depth scale
//! is infinite). Use as `#[serde(with = "crate::nonfinite::nan_as_null")]`.

use serde::{Deserialize, Deserializer, Serializer};

/// A finite value as itself, NaN and infinities as `null`.
fn serialize_finite<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else {
        s.serialize_none()
    }
}

/// `null` read back as `missing`.
fn deserialize_or<'de, D: Deserializer<'de>>(d: D, missing: f64) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(missing))
}

/// Fields that may be NaN (a diverged loss): `null` reads back as NaN.
pub mod nan_as_null {
    use serde::{Deserializer, Serializer};

    /// NaN and infinities as `null`.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        super::serialize_finite(v, s)
    }

    /// `null` as NaN.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        super::deserialize_or(d, f64::NAN)
    }
}

/// Fields that may be infinite (a depth scale at the edge of chaos):
/// `null` reads back as +infinity.
pub mod infinite_as_null {
    use serde::{Deserializer, Serializer};

    /// Infinities and NaN as `null`.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        super::serialize_finite(v, s)
    }

    /// `null` as +infinity.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        super::deserialize_or(d, f64::INFINITY)
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Both {
        #[serde(with = "super::nan_as_null")]
        loss: f64,
        #[serde(with = "super::infinite_as_null")]
        depth: f64,
    }

    #[test]
    fn non_finite_values_are_null_and_read_back_as_what_they_mean() {
        let json = serde_json::to_string(&Both { loss: f64::NAN, depth: f64::INFINITY }).unwrap();
        assert_eq!(json, r#"{"loss":null,"depth":null}"#);
        let back: Both = serde_json::from_str(&json).unwrap();
        assert!(back.loss.is_nan() && back.depth == f64::INFINITY);
        let back: Both = serde_json::from_str(r#"{"loss":2.5,"depth":3.0}"#).unwrap();
        assert_eq!((back.loss, back.depth), (2.5, 3.0));
    }
}
