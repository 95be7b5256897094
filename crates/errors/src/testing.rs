//! Test helpers (feature `test-util`): capture the `tracing` events a piece of
//! code emits, to check that a denial is logged with the shared vocabulary
//! and that no secret reaches a log line.
//!
//! ```
//! use palisade_errors::SecurityEvent;
//! use palisade_errors::testing::EventCapture;
//!
//! let capture = EventCapture::new();
//! {
//!     let _guard = capture.set_default();
//!     tracing::info!(event = SecurityEvent::AuthzFail.as_str(), reason = "missing_role", "denied");
//! }
//! let events = capture.security_events();
//! assert_eq!(events.len(), 1);
//! assert_eq!(events[0].event(), Some(SecurityEvent::AuthzFail));
//! assert_eq!(events[0].field("reason"), Some("missing_role"));
//! capture.assert_absent("hunter2");
//!
//! // The fields of the spans an event is inside (the adapters' `request_id`):
//! {
//!     let _guard = capture.set_default();
//!     let span = tracing::info_span!("request", request_id = "r-1");
//!     span.in_scope(|| tracing::info!("inside"));
//! }
//! assert_eq!(capture.events()[1].span_field("request_id"), Some("r-1"));
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::ThreadId;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::SecurityEvent;

/// One captured `tracing` event: its level, target and fields (the message
/// is the field `message`), each field rendered as text.
#[derive(Clone, Debug)]
pub struct CapturedEvent {
    /// The event's level.
    pub level: Level,
    /// The module path or explicit target that emitted it.
    pub target: String,
    /// Every field, by name, as its `Display` (strings) or `Debug` text.
    pub fields: BTreeMap<String, String>,
    /// The fields of every span the event was emitted inside (its parent
    /// span and that span's ancestors), by name; on a name clash the
    /// innermost span's value wins.
    pub span_fields: BTreeMap<String, String>,
}

impl CapturedEvent {
    /// The text of field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// The text of field `name` of the innermost span around the event that
    /// has one (e.g. the adapters' `request_id`).
    pub fn span_field(&self, name: &str) -> Option<&str> {
        self.span_fields.get(name).map(String::as_str)
    }

    /// The shared security event named by the `event` field, if any.
    pub fn event(&self) -> Option<SecurityEvent> {
        self.field("event").and_then(SecurityEvent::from_name)
    }
}

#[derive(Default)]
struct Captured {
    events: Vec<CapturedEvent>,
    /// Span field values, to look for secrets.
    span_fields: Vec<String>,
    /// Every span: its fields and its parent, by span id.
    spans: HashMap<u64, CapturedSpan>,
    /// The spans each thread is inside, innermost last.
    entered: HashMap<ThreadId, Vec<u64>>,
}

struct CapturedSpan {
    fields: BTreeMap<String, String>,
    parent: Option<u64>,
}

impl Captured {
    /// The current thread's innermost entered span.
    fn current(&self) -> Option<u64> {
        self.entered
            .get(&std::thread::current().id())
            .and_then(|stack| stack.last().copied())
    }

    /// The fields of `span` and its ancestors, the innermost winning.
    fn fields_from(&self, mut span: Option<u64>) -> BTreeMap<String, String> {
        let mut fields = BTreeMap::new();
        while let Some(data) = span.and_then(|id| self.spans.get(&id)) {
            for (name, value) in &data.fields {
                fields.entry(name.clone()).or_insert_with(|| value.clone());
            }
            span = data.parent;
        }
        fields
    }
}

/// A `tracing` subscriber that keeps every event in memory.
///
/// [`set_default`](Self::set_default) installs it for the current thread
/// (use a current-thread runtime for async code, as `#[tokio::test]` does).
#[derive(Clone, Default)]
pub struct EventCapture {
    captured: Arc<Mutex<Captured>>,
    next_span: Arc<AtomicU64>,
}

impl EventCapture {
    /// An empty capture.
    pub fn new() -> EventCapture {
        EventCapture::default()
    }

    /// Makes this capture the current thread's subscriber until the guard drops.
    pub fn set_default(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(self.clone())
    }

    /// Every event captured so far.
    pub fn events(&self) -> Vec<CapturedEvent> {
        self.lock().events.clone()
    }

    /// The events whose `event` field is one of [`SecurityEvent`]'s names.
    pub fn security_events(&self) -> Vec<CapturedEvent> {
        self.events()
            .into_iter()
            .filter(|event| event.event().is_some())
            .collect()
    }

    /// The captured events named `event`.
    pub fn named(&self, event: SecurityEvent) -> Vec<CapturedEvent> {
        self.events()
            .into_iter()
            .filter(|captured| captured.event() == Some(event))
            .collect()
    }

    /// Panics if any captured event or span field contains `needle` (a
    /// password, token, key or secret the test used).
    ///
    /// # Panics
    ///
    /// When `needle` was logged; the message names the field, not the value.
    pub fn assert_absent(&self, needle: &str) {
        let captured = self.lock();
        for event in &captured.events {
            for (name, value) in &event.fields {
                assert!(
                    !value.contains(needle),
                    "a secret reached the log: field `{name}` of an event from {}",
                    event.target
                );
            }
        }
        for value in &captured.span_fields {
            assert!(
                !value.contains(needle),
                "a secret reached the log in a span field"
            );
        }
    }

    /// Panics unless every event carrying an `event` field uses a name of
    /// the shared vocabulary, so no module invents its own.
    ///
    /// # Panics
    ///
    /// On the first event with an unknown name.
    pub fn assert_vocabulary(&self) {
        for event in self.events() {
            if let Some(name) = event.field("event") {
                assert!(
                    SecurityEvent::from_name(name).is_some(),
                    "event name {name:?} (from {}) is not in palisade_errors::SecurityEvent",
                    event.target
                );
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Captured> {
        self.captured.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Default)]
struct FieldText(BTreeMap<String, String>);

impl Visit for FieldText {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for EventCapture {
    fn enabled(&self, _metadata: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = FieldText::default();
        span.record(&mut fields);
        let id = self.next_span.fetch_add(1, Ordering::Relaxed) + 1;
        let mut captured = self.lock();
        let parent = if span.is_contextual() {
            captured.current()
        } else {
            span.parent().map(Id::into_u64)
        };
        captured.span_fields.extend(fields.0.values().cloned());
        captured.spans.insert(
            id,
            CapturedSpan {
                fields: fields.0,
                parent,
            },
        );
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut fields = FieldText::default();
        values.record(&mut fields);
        let mut captured = self.lock();
        captured.span_fields.extend(fields.0.values().cloned());
        if let Some(data) = captured.spans.get_mut(&span.into_u64()) {
            data.fields.extend(fields.0);
        }
    }

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = FieldText::default();
        event.record(&mut fields);
        let metadata = event.metadata();
        let mut captured = self.lock();
        let parent = if event.is_contextual() {
            captured.current()
        } else {
            event.parent().map(Id::into_u64)
        };
        let span_fields = captured.fields_from(parent);
        captured.events.push(CapturedEvent {
            level: *metadata.level(),
            target: metadata.target().to_owned(),
            fields: fields.0,
            span_fields,
        });
    }

    fn enter(&self, span: &Id) {
        self.lock()
            .entered
            .entry(std::thread::current().id())
            .or_default()
            .push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let mut captured = self.lock();
        if let Some(stack) = captured.entered.get_mut(&std::thread::current().id()) {
            // Spans exit in reverse order of entering, but be lenient.
            if let Some(position) = stack.iter().rposition(|&id| id == span.into_u64()) {
                stack.remove(position);
            }
        }
    }
}
