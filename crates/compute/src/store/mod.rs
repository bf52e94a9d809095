//! Persistence of the compute service: the API never writes SQL.
