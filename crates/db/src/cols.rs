//! Column definitions for migrations, the same on the three backends:
//! `s`/`sn` strings of a length (not null / null), `text`, `boolean`,
//! `big` 64-bit integers, `dbl` doubles, `serial` auto-increment keys.

use sea_orm_migration::prelude::*;

pub fn s(name: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(name).string_len(len).not_null().to_owned()
}
pub fn sn(name: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(name).string_len(len).null().to_owned()
}
pub fn text(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).text().not_null().to_owned()
}
pub fn textn(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).text().null().to_owned()
}
pub fn boolean(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).boolean().not_null().to_owned()
}
pub fn big(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}
pub fn bign(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().null().to_owned()
}
pub fn dbl(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).double().not_null().to_owned()
}
pub fn serial(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().auto_increment().primary_key().to_owned()
}
