//! [`SpanFields`]: the JSON log's span fields, written straight to JSON.
//!
//! The JSON log formats every span's fields when the span is made (they are
//! printed with each event inside it later), and every request opens a
//! `request` span. tracing-subscriber's `JsonFields` builds a map of
//! `serde_json::Value`s for that and serialises it, some ten allocations a
//! request for three short strings. [`SpanFields`] writes the same JSON
//! object text directly: one stack buffer, one copy into the span's string.
//! The log lines are the same (a test compares them with `JsonFields`'s).

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::Writer;

/// Formats span fields as a JSON object, as `JsonFields` does, without
/// building `serde_json` values. Give it to the fmt layer with the JSON event
/// format: `fmt::layer().fmt_fields(SpanFields).event_format(fmt::format().json())`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpanFields;

impl<'writer> FormatFields<'writer> for SpanFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut buffer = Buffer::new();
        buffer.push(b'{');
        let mut visitor = JsonObject {
            out: &mut buffer,
            first: true,
        };
        fields.record(&mut visitor);
        buffer.push(b'}');
        writer.write_str(buffer.as_str())
    }

    /// Fields recorded after the span was made (`Span::record`) join its
    /// object; a name recorded twice appears twice, and a JSON reader keeps
    /// the last value, as with `JsonFields`.
    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let had_fields = current.fields.len() > 2;
        if current.fields.ends_with('}') {
            current.fields.pop();
        } else {
            current.fields.clear();
            current.fields.push('{');
        }
        let mut buffer = Buffer::new();
        let mut visitor = JsonObject {
            out: &mut buffer,
            first: !had_fields,
        };
        fields.record(&mut visitor);
        buffer.push(b'}');
        current.fields.push_str(buffer.as_str());
        Ok(())
    }
}

/// The fields of one span or record as `"name":value` pairs.
struct JsonObject<'a> {
    out: &'a mut Buffer,
    first: bool,
}

impl JsonObject<'_> {
    fn name(&mut self, name: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_json_string(self.out, name);
        self.out.push(b':');
    }

    fn raw(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        self.name(field.name());
        let _ = self.out.write_fmt(value);
    }
}

/// Each kind of value as `JsonVisitor` (`JsonFields`) writes it; the
/// kinds it leaves to `Visit`'s defaults (`i128`, `u128`, errors) go the same
/// way, through `record_debug`, as strings.
impl Visit for JsonObject<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.name(field.name());
        write_json_string(self.out, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.raw(field, format_args!("{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.raw(field, format_args!("{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.raw(field, format_args!("{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // serde_json's own text (ryu; `null` when not finite), so the value
        // reads back as with `JsonFields`.
        let text = serde_json::to_string(&value).unwrap_or_else(|_| "null".to_owned());
        self.raw(field, format_args!("{text}"));
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.name(field.name());
        self.out.push(b'[');
        for (index, byte) in value.iter().enumerate() {
            if index > 0 {
                self.out.push(b',');
            }
            let _ = write!(self.out, "{byte}");
        }
        self.out.push(b']');
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        // A `log` record's metadata, which the event formatter has already
        // written (tracing-log).
        if name.starts_with("log.") {
            return;
        }
        self.name(name.strip_prefix("r#").unwrap_or(name));
        self.out.push(b'"');
        let _ = write!(Escape(self.out), "{value:?}");
        self.out.push(b'"');
    }
}

/// `value` as a JSON string, quotes included.
fn write_json_string(out: &mut Buffer, value: &str) {
    out.push(b'"');
    let _ = Escape(out).write_str(value);
    out.push(b'"');
}

/// Escapes what it is given for the inside of a JSON string, as serde_json
/// does: `"`, `\` and the control characters.
struct Escape<'a>(&'a mut Buffer);

impl fmt::Write for Escape<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let bytes = text.as_bytes();
        let mut start = 0;
        // Runs of bytes that need no escape (almost all of them) are copied
        // whole.
        while let Some(offset) = bytes.get(start..).and_then(|rest| {
            rest.iter()
                .position(|&byte| NEEDS_ESCAPE[usize::from(byte)])
        }) {
            let index = start + offset;
            // Escaped bytes are ASCII, so `index` is a char boundary.
            self.0.push_str(text.get(start..index).unwrap_or_default());
            let byte = bytes.get(index).copied().unwrap_or_default();
            match byte {
                b'"' => self.0.push_str("\\\""),
                b'\\' => self.0.push_str("\\\\"),
                b'\n' => self.0.push_str("\\n"),
                b'\r' => self.0.push_str("\\r"),
                b'\t' => self.0.push_str("\\t"),
                0x08 => self.0.push_str("\\b"),
                0x0c => self.0.push_str("\\f"),
                _ => {
                    let _ = write!(self.0, "\\u{byte:04x}");
                }
            }
            start = index + 1;
        }
        self.0.push_str(text.get(start..).unwrap_or_default());
        Ok(())
    }
}

/// The bytes a JSON string escapes: `"`, `\` and the control characters.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// A string on the stack while it fits (a request span's fields do), on the
/// heap past that.
struct Buffer {
    stack: [u8; Buffer::STACK],
    len: usize,
    heap: Option<String>,
}

impl Buffer {
    const STACK: usize = 256;

    fn new() -> Buffer {
        Buffer {
            stack: [0; Buffer::STACK],
            len: 0,
            heap: None,
        }
    }

    /// Adds one ASCII byte (the JSON punctuation).
    fn push(&mut self, byte: u8) {
        debug_assert!(byte.is_ascii());
        if self.heap.is_none()
            && let Some(slot) = self.stack.get_mut(self.len)
        {
            *slot = byte;
            self.len += 1;
            return;
        }
        self.push_str(char::from(byte).encode_utf8(&mut [0; 4]));
    }

    fn push_str(&mut self, text: &str) {
        if let Some(heap) = &mut self.heap {
            heap.push_str(text);
            return;
        }
        let end = self.len + text.len();
        if let Some(room) = self.stack.get_mut(self.len..end) {
            room.copy_from_slice(text.as_bytes());
            self.len = end;
        } else {
            let mut heap = String::with_capacity(end.max(2 * Buffer::STACK));
            heap.push_str(self.as_str());
            heap.push_str(text);
            self.heap = Some(heap);
        }
    }

    fn as_str(&self) -> &str {
        match &self.heap {
            Some(heap) => heap,
            // Only whole `&str`s are copied in, so the bytes are UTF-8.
            None => std::str::from_utf8(self.stack.get(..self.len).unwrap_or_default())
                .unwrap_or_default(),
        }
    }
}

impl fmt::Write for Buffer {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.push_str(text);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::SpanFields;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::ErrorKind::Other)?
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[derive(Debug)]
    struct Tricky;

    impl std::fmt::Display for Tricky {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a \"quoted\" \\ error\u{1}")
        }
    }

    impl std::error::Error for Tricky {}

    /// Logs the same spans and events through the JSON layer twice, with
    /// `JsonFields` and with `SpanFields`, and returns both outputs' lines
    /// as JSON values without their timestamps.
    fn both() -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
        fn emit() {
            let long = "x".repeat(600);
            let span = tracing::info_span!(
                "request",
                request_id = "0b7c2c9e-6a0c-4b59-9d0f-2f3c0f8e7d61",
                method = "GET",
                path = "/a\"b\\c\n\t\u{7}é漢🎉",
                debug = ?Some("dbg\"quote"),
                display = %"shown \\ as is",
                count = 42_u64,
                delta = -7_i64,
                big = u128::MAX,
                ratio = 0.1_f64,
                whole = 3.0_f64,
                nan = f64::NAN,
                flag = true,
                error = &Tricky as &(dyn std::error::Error + 'static),
                later = tracing::field::Empty,
                long = long.as_str(),
                bytes = &b"\0\"\xff"[..],
                r#kind = ?"raw",
            );
            let _entered = span.enter();
            tracing::info!(reason = "first", "inside");
            span.record("later", "recorded \"after\"");
            span.record("count", 43_u64);
            tracing::warn!("after record");
            let empty = tracing::info_span!("empty");
            empty.record("nothing", 1);
            let _inner = empty.enter();
            tracing::info!("in an empty span");
            let filled = tracing::info_span!("filled", late = tracing::field::Empty);
            filled.record("late", "now");
            let _filled = filled.enter();
            tracing::info!("in a span filled later");
        }
        let run = |custom: bool| {
            let lines = Lines::default();
            let writer = lines.clone();
            let format = tracing_subscriber::fmt::format()
                .json()
                .with_current_span(true)
                .with_span_list(true);
            let layer = tracing_subscriber::fmt::layer().with_writer(move || writer.clone());
            if custom {
                let layer = layer.fmt_fields(SpanFields).event_format(format);
                tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), emit);
            } else {
                let layer = layer.json().event_format(format);
                tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), emit);
            }
            let bytes = lines
                .0
                .lock()
                .map(|bytes| bytes.clone())
                .unwrap_or_default();
            String::from_utf8(bytes)
                .unwrap_or_default()
                .lines()
                .map(|line| {
                    let mut value: serde_json::Value =
                        serde_json::from_str(line).unwrap_or(serde_json::Value::Null);
                    if let Some(object) = value.as_object_mut() {
                        object.remove("timestamp");
                    }
                    value
                })
                .collect::<Vec<_>>()
        };
        (run(false), run(true))
    }

    /// A request path is the client's: every ASCII byte, alone and among
    /// others, and text past the stack buffer, is escaped exactly as
    /// serde_json escapes it (a wrong escape would break the log line, or
    /// let a client forge fields into it: log injection).
    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them_so_a_path_cannot_inject_log_fields() {
        let mut cases: Vec<String> = (0_u8..0x80)
            .map(|byte| format!("a{}b", char::from(byte)))
            .collect();
        cases.push((0_u8..0x80).map(char::from).collect());
        cases.push("\",\"forged\":\"yes".to_owned());
        cases.push("é漢🎉\u{7f}\u{2028}".to_owned());
        cases.push("\"\n".repeat(200));
        for case in cases {
            let mut buffer = super::Buffer::new();
            super::write_json_string(&mut buffer, &case);
            let expected = serde_json::to_string(&case).unwrap_or_default();
            assert_eq!(buffer.as_str(), expected, "{case:?}");
        }
    }

    #[test]
    fn span_fields_log_the_same_json_as_tracings_json_fields() {
        let (reference, ours) = both();
        assert_eq!(reference.len(), 4, "{reference:#?}");
        assert!(reference.iter().all(serde_json::Value::is_object));
        assert_eq!(ours, reference);
        // The values a log reader relies on, read back as given.
        let span = &ours[0]["span"];
        assert_eq!(span["path"], "/a\"b\\c\n\t\u{7}é漢🎉");
        assert_eq!(span["error"], "a \"quoted\" \\ error\u{1}");
        assert_eq!(span["big"], u128::MAX.to_string());
        assert_eq!(span["bytes"], serde_json::json!([0, 34, 255]));
        assert_eq!(span["kind"], "\"raw\"");
        assert_eq!(ours[1]["span"]["later"], "recorded \"after\"");
        assert_eq!(ours[1]["span"]["count"], 43);
        assert_eq!(ours[3]["span"]["late"], "now");
    }
}
