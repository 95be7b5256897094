#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod error;
mod event;
mod kind;
mod request_id;
mod store;

#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "test-util")]
pub mod testing;

pub use error::{Error, FieldError, UNAVAILABLE_RETRY_AFTER_SECS};
pub use event::{SecurityEvent, SubjectHash};
pub use kind::ErrorKind;
pub use request_id::{REQUEST_ID_HEADER, RequestId};
pub use store::{
    KeyPrefixProblem, MAX_KEY_PREFIX_LEN, StoreError, StoreErrorKind, check_key_prefix,
};
