//! TensorBoard's event files: a sequence of records (length, masked CRC32C
//! of the length, an `Event` protobuf, masked CRC32C of it; TensorFlow's
//! `core/lib/io/record_writer.cc`), each event a scalar or a histogram at a
//! step. The messages are the subset of TensorFlow's `event.proto`,
//! `summary.proto` and `histogram.proto` that the writer needs, with their
//! field numbers.

/// `tensorflow.Event`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// The global step.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// What the event carries.
    #[prost(oneof = "What", tags = "3, 5")]
    pub what: Option<What>,
}

/// `Event.what`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum What {
    /// The first event of a file: `brain.Event:2`.
    #[prost(string, tag = "3")]
    FileVersion(String),
    /// Values at a step.
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// Tagged values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    /// The chart it belongs to.
    #[prost(string, tag = "1")]
    pub tag: String,
    /// A number or a histogram.
    #[prost(oneof = "Payload", tags = "2, 5")]
    pub value: Option<Payload>,
}

/// `Summary.Value.value`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Payload {
    /// A scalar.
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    /// A histogram.
    #[prost(message, tag = "5")]
    Histo(HistogramProto),
}

/// `tensorflow.HistogramProto`: bucket i counts the values up to
/// `bucket_limit[i]` above the previous limit.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistogramProto {
    /// Smallest value.
    #[prost(double, tag = "1")]
    pub min: f64,
    /// Largest value.
    #[prost(double, tag = "2")]
    pub max: f64,
    /// Number of values.
    #[prost(double, tag = "3")]
    pub num: f64,
    /// Their sum.
    #[prost(double, tag = "4")]
    pub sum: f64,
    /// Their sum of squares.
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    /// Right edges of the buckets.
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    /// Counts of the buckets.
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

/// The CRC32C TensorFlow's records carry, "masked" so that a CRC of data
/// holding CRCs is not trivially related to them (`core/lib/hash/crc32c.h`).
pub fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Appends one record holding `data` to `out`.
pub fn push_record(out: &mut Vec<u8>, data: &[u8]) {
    let length = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&length);
    out.extend_from_slice(&masked_crc(&length).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

/// An event file's bytes, built in memory and written at once.
pub struct EventFile {
    bytes: Vec<u8>,
    wall_time: f64,
}

impl EventFile {
    /// A file whose events carry `wall_time`, starting with its version.
    pub fn new(wall_time: f64) -> Self {
        let mut file = EventFile { bytes: Vec::new(), wall_time };
        file.push(0, What::FileVersion("brain.Event:2".into()));
        file
    }

    fn push(&mut self, step: usize, what: What) {
        let event = Event { wall_time: self.wall_time, step: step as i64, what: Some(what) };
        push_record(&mut self.bytes, &prost::Message::encode_to_vec(&event));
    }

    /// A scalar `value` of `tag` at `step` (non-finite values are skipped:
    /// TensorBoard cannot draw them).
    pub fn scalar(&mut self, tag: &str, step: usize, value: f64) {
        if value.is_finite() {
            let value = SummaryValue { tag: tag.into(), value: Some(Payload::SimpleValue(value as f32)) };
            self.push(step, What::Summary(Summary { value: vec![value] }));
        }
    }

    /// A histogram of `tag` at `step`.
    pub fn histogram(&mut self, tag: &str, step: usize, histogram: HistogramProto) {
        let value = SummaryValue { tag: tag.into(), value: Some(Payload::Histo(histogram)) };
        self.push(step, What::Summary(Summary { value: vec![value] }));
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_masked_crc_is_tensorflows() {
        // CRC32C("123456789") = 0xE3069283 (the standard check value).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        // Rotated right by 15 bits plus 0xa282ead8, worked out by hand.
        assert_eq!(masked_crc(b"123456789"), 0xC78A_B0E5);
    }

    #[test]
    fn a_record_frames_its_data() {
        let mut out = Vec::new();
        push_record(&mut out, b"abc");
        assert_eq!(out.len(), 8 + 4 + 3 + 4);
        assert_eq!(&out[..8], &3u64.to_le_bytes());
        assert_eq!(&out[12..15], b"abc");
        let event = Event { wall_time: 1.0, step: 7, what: Some(What::FileVersion("brain.Event:2".into())) };
        let decoded: Event = prost::Message::decode(prost::Message::encode_to_vec(&event).as_slice()).unwrap();
        assert_eq!(decoded, event);
    }
}
