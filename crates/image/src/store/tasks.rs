//! Persistence of the tasks API (being written).
