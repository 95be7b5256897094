#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod error;
mod kind;
mod request_id;

pub use error::{Error, FieldError};
pub use kind::ErrorKind;
pub use request_id::{REQUEST_ID_HEADER, RequestId};
