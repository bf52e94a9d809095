//! Persistence of the image service: images with their tags and members.

pub mod image_tasks;
pub mod images;
pub mod members;
pub mod metadefs;
pub mod tasks;

pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
