//! Persistence of the metadefs API (being written).
