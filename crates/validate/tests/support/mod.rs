pub mod zip_bytes;
